"""Byte sizes as users write them: ``524288``, ``512KiB``, ``0.5MiB``, ``512KB``, ``1.5 MB``."""

from __future__ import annotations

import re
from fractions import Fraction

from cosma.errors import OptionError

_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "k": 1 << 10,
    "m": 1 << 20,
    "g": 1 << 30,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``text``; binary (KiB, MiB) and decimal (KB, MB) units, case-insensitive.

    >>> parse_size("512KiB"), parse_size("1.5MB"), parse_size("4096")
    (524288, 1500000, 4096)
    """
    m = _SIZE.match(str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise OptionError(f"cannot read size {text!r}: write bytes or a number with KiB, MiB, GiB, KB, MB or GB")
    value = Fraction(m.group(1)) * _UNITS[m.group(2).lower()]  # exact: 1.001KB is 1001 bytes
    if value.denominator != 1:
        raise OptionError(f"size {text!r} is not a whole number of bytes")
    return int(value)


def format_size(n: int) -> str:
    """Human-readable bytes: whole bytes below 1 KiB, else KiB, MiB or GiB with one decimal.

    >>> format_size(524288), format_size(1536), format_size(1000), format_size(3 << 30)
    ('512.0 KiB', '1.5 KiB', '1000 B', '3.0 GiB')
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
