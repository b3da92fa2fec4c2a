"""Byte sizes as users write them, and budget names."""

from __future__ import annotations

import pytest
from graphs import skip

from cosma.budgets import resolve_budget
from cosma.errors import CosmaError, OptionError
from cosma.units import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("0", 0),
        ("3B", 3),
        ("512KiB", 524_288),
        ("512kib", 524_288),
        ("1MiB", 1_048_576),
        ("0.5MiB", 524_288),
        ("1.MiB", 1_048_576),
        (".5k", 512),
        ("2GiB", 2 << 30),
        ("2MB", 2_000_000),
        ("1.5 MB", 1_500_000),
        (" 12 KB ", 12_000),
        ("1.001KB", 1001),  # exact arithmetic: a float would give 1000.9999999999999
        ("1.1MB", 1_100_000),
        ("2g", 2 << 30),
        ("9007199254740993", 9_007_199_254_740_993),  # beyond a float's 53 bits
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot read size ''"),
        ("-1", "cannot read size '-1'"),
        ("1e3", "cannot read size '1e3'"),
        ("7TB", "cannot read size '7TB'"),
        ("1,024", "cannot read size '1,024'"),
        ("MiB", "cannot read size 'MiB'"),
        ("1.5", "not a whole number of bytes"),
        ("0.7MiB", "not a whole number of bytes"),
    ],
)
def test_parse_size_rejects(text: str, message: str) -> None:
    with pytest.raises(OptionError, match=message) as info:
        parse_size(text)
    assert isinstance(info.value, CosmaError)  # so the CLI prints one line and exits 2
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1 << 20, "1.0 MiB"),
        (5 << 30, "5.0 GiB"),
        (1 << 40, "1024.0 GiB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_resolve_budget() -> None:
    g = skip().graph
    assert resolve_budget(g, "M_R") == 16
    assert resolve_budget(g, " m_r ") == 16
    assert resolve_budget(g, "1KiB") == 1024
    with pytest.raises(OptionError):
        resolve_budget(g, "M_X")
