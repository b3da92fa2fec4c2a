"""Tiny named graphs with hand-derived answers, shared by the test suite.

Every tensor's shape has as many elements as the tensor has bytes (dtype ``uint8``), so
``graph.with_element_bytes(k)`` multiplies every size by ``k``.

Each :class:`Fixture` carries numbers worked out by hand (the derivation is in the
builder's docstring): working sets, ``M_R``, compulsory traffic, lifetimes and live bytes
under named orders, the minimum peak over all topological orders (``M_P``), and the least
extra traffic any plan can achieve at a few budgets (alignment 1). Each such optimum comes
with a witness plan (the upper bound; the builder's docstring argues the lower bound), so
a solver test can assert ``plan.extra_bytes == fixture.optimal_extra[budget]``.

Test modules import it as ``from graphs import FIXTURES, skip`` (pytest's default
``prepend`` import mode puts ``tests/`` on ``sys.path``; there is no ``tests/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cosma.contract import Free, Load, Run, Step, Store
from cosma.graph import Graph, Operator, Tensor


@dataclass(frozen=True)
class Fixture:
    """A graph and what is true of it, derived by hand."""

    graph: Graph
    working_set: Mapping[str, int]
    min_scratchpad: int  # M_R
    compulsory_bytes: int
    #: order -> resident bytes at each step with no eviction
    live_bytes: Mapping[tuple[str, ...], tuple[int, ...]]
    #: closed [first, last] step interval of each tensor under the default order
    lifetimes: Mapping[str, tuple[int, int]]
    min_peak: int  # M_P: the least peak of any topological order
    #: scratchpad bytes -> least extra_bytes of any plan (alignment 1)
    optimal_extra: Mapping[int, int]
    #: scratchpad bytes -> a plan's steps achieving optimal_extra[budget] (the witness's order)
    witnesses: Mapping[int, tuple[Step, ...]] = field(default_factory=dict)


def _t(name: str, size: int, kind: str) -> Tensor:
    return Tensor(name, size, kind, (size,), "uint8")  # type: ignore[arg-type]


def _op(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], op_type: str = "Op") -> Operator:
    return Operator(name, op_type, inputs, outputs)


def chain() -> Fixture:
    """x(10) w1(3) -a-> t1(20); t1 w2(5) -b-> t2(6); t2 -c-> out(4, output).

    Working sets a 10+3+20=33, b 20+5+6=31, c 6+4=10, so M_R = 33. One order; live bytes
    33, 31, 10. Compulsory: x + w1 + w2 + out = 22. At 33 nothing needs evicting.
    """
    g = Graph.build(
        "chain",
        [
            _t("x", 10, "input"),
            _t("w1", 3, "weight"),
            _t("w2", 5, "weight"),
            _t("t1", 20, "activation"),
            _t("t2", 6, "activation"),
            _t("out", 4, "output"),
        ],
        [
            _op("a", ("x", "w1"), ("t1",), "Conv"),
            _op("b", ("t1", "w2"), ("t2",), "Conv"),
            _op("c", ("t2",), ("out",), "Relu"),
        ],
    )
    witness_33 = (
        Load("x", 0),
        Load("w1", 10),
        Run("a", (("t1", 13),)),
        Free("x"),
        Free("w1"),
        Load("w2", 0),
        Run("b", (("t2", 5),)),
        Free("t1"),
        Free("w2"),
        Run("c", (("out", 0),)),
        Store("out"),
        Free("t2"),
        Free("out"),
    )
    return Fixture(
        graph=g,
        working_set={"a": 33, "b": 31, "c": 10},
        min_scratchpad=33,
        compulsory_bytes=22,
        live_bytes={("a", "b", "c"): (33, 31, 10)},
        lifetimes={"x": (0, 0), "w1": (0, 0), "t1": (0, 1), "w2": (1, 1), "t2": (1, 2), "out": (2, 2)},
        min_peak=33,
        optimal_extra={33: 0},
        witnesses={33: witness_33},
    )


def diamond() -> Fixture:
    """x(8) -a-> p(16); p -b-> q(4); p -c-> r(12); q r -d-> y(2, output).

    Working sets a 24, b 20, c 28, d 18: M_R = 28. Both orders (b or c first) peak at 32:
    when the second branch runs, p and both branch outputs are live.

    Budget 28: if b runs first, c needs p + r = 28 so q (read later by d) must leave:
    store and reload, >= 8. If c runs first, b needs p + q = 20 + r(12) > 28, so r must
    leave: >= 24. Least extra 8; the witness keeps p at the bottom so r fits above it.
    """
    g = Graph.build(
        "diamond",
        [
            _t("x", 8, "input"),
            _t("p", 16, "activation"),
            _t("q", 4, "activation"),
            _t("r", 12, "activation"),
            _t("y", 2, "output"),
        ],
        [
            _op("a", ("x",), ("p",)),
            _op("b", ("p",), ("q",)),
            _op("c", ("p",), ("r",)),
            _op("d", ("q", "r"), ("y",), "Add"),
        ],
    )
    witness_28 = (
        Load("x", 16),
        Run("a", (("p", 0),)),
        Free("x"),
        Run("b", (("q", 16),)),
        Store("q"),
        Free("q"),
        Run("c", (("r", 16),)),
        Free("p"),
        Load("q", 0),
        Run("d", (("y", 4),)),
        Store("y"),
        Free("q"),
        Free("r"),
        Free("y"),
    )
    witness_32 = (
        Load("x", 16),
        Run("a", (("p", 0),)),
        Free("x"),
        Run("b", (("q", 16),)),
        Run("c", (("r", 20),)),
        Free("p"),
        Run("d", (("y", 0),)),
        Store("y"),
        Free("q"),
        Free("r"),
        Free("y"),
    )
    return Fixture(
        graph=g,
        working_set={"a": 24, "b": 20, "c": 28, "d": 18},
        min_scratchpad=28,
        compulsory_bytes=10,
        live_bytes={("a", "b", "c", "d"): (24, 20, 32, 18), ("a", "c", "b", "d"): (24, 28, 32, 18)},
        lifetimes={"x": (0, 0), "p": (0, 2), "q": (1, 3), "r": (2, 3), "y": (3, 3)},
        min_peak=32,
        optimal_extra={28: 8, 32: 0},
        witnesses={28: witness_28, 32: witness_32},
    )


def fan_out() -> Fixture:
    """x(4) -a-> h(10); h -b1-> o1(3); h -b2-> o2(5); h -b3-> o3(7), all three outputs.

    Working sets 14, 13, 15, 17: M_R = 17. h lives through every branch and each output is
    stored and dropped at once, so the default order's live bytes are 14, 13, 15, 17 and
    every order peaks at 17 (the b3 step). Compulsory 4 + 3 + 5 + 7 = 19.
    """
    g = Graph.build(
        "fan_out",
        [
            _t("x", 4, "input"),
            _t("h", 10, "activation"),
            _t("o1", 3, "output"),
            _t("o2", 5, "output"),
            _t("o3", 7, "output"),
        ],
        [_op("a", ("x",), ("h",)), _op("b1", ("h",), ("o1",)), _op("b2", ("h",), ("o2",)), _op("b3", ("h",), ("o3",))],
    )
    witness_17 = (
        Load("x", 10),
        Run("a", (("h", 0),)),
        Free("x"),
        Run("b1", (("o1", 10),)),
        Store("o1"),
        Free("o1"),
        Run("b2", (("o2", 10),)),
        Store("o2"),
        Free("o2"),
        Run("b3", (("o3", 10),)),
        Store("o3"),
        Free("o3"),
        Free("h"),
    )
    return Fixture(
        graph=g,
        working_set={"a": 14, "b1": 13, "b2": 15, "b3": 17},
        min_scratchpad=17,
        compulsory_bytes=19,
        live_bytes={("a", "b1", "b2", "b3"): (14, 13, 15, 17), ("a", "b3", "b2", "b1"): (14, 17, 15, 13)},
        lifetimes={"x": (0, 0), "h": (0, 3), "o1": (1, 1), "o2": (2, 2), "o3": (3, 3)},
        min_peak=17,
        optimal_extra={17: 0},
        witnesses={17: witness_17},
    )


def skip() -> Fixture:
    """A skip connection: x(2) -a-> s(6); s -b-> u(10); u -c-> v(3); s v -d-> y(1, output).

    Working sets a 8, b 16, c 13, d 10: M_R = 16. One order; s is held across b and c, so
    live bytes are 8, 16, 19, 10 and the peak 19 exceeds M_R.

    Budgets 16..18: c needs u + v = 13, plus s = 19 > budget, so s (read later by d, no DRAM
    copy) must be stored and reloaded: >= 12, and the witness does it in 12. At 19 the
    witness places x above s and u so that v fits: 0.
    """
    g = Graph.build(
        "skip",
        [
            _t("x", 2, "input"),
            _t("s", 6, "activation"),
            _t("u", 10, "activation"),
            _t("v", 3, "activation"),
            _t("y", 1, "output"),
        ],
        [
            _op("a", ("x",), ("s",)),
            _op("b", ("s",), ("u",)),
            _op("c", ("u",), ("v",)),
            _op("d", ("s", "v"), ("y",), "Add"),
        ],
    )
    witness_16 = (
        Load("x", 6),
        Run("a", (("s", 0),)),
        Free("x"),
        Run("b", (("u", 6),)),
        Store("s"),
        Free("s"),
        Run("c", (("v", 0),)),
        Free("u"),
        Load("s", 3),
        Run("d", (("y", 9),)),
        Store("y"),
        Free("s"),
        Free("v"),
        Free("y"),
    )
    witness_19 = (
        Load("x", 16),
        Run("a", (("s", 0),)),
        Free("x"),
        Run("b", (("u", 6),)),
        Run("c", (("v", 16),)),
        Free("u"),
        Run("d", (("y", 6),)),
        Store("y"),
        Free("s"),
        Free("v"),
        Free("y"),
    )
    return Fixture(
        graph=g,
        working_set={"a": 8, "b": 16, "c": 13, "d": 10},
        min_scratchpad=16,
        compulsory_bytes=3,
        live_bytes={("a", "b", "c", "d"): (8, 16, 19, 10)},
        lifetimes={"x": (0, 0), "s": (0, 3), "u": (1, 2), "v": (2, 3), "y": (3, 3)},
        min_peak=19,
        optimal_extra={16: 12, 18: 12, 19: 0},
        witnesses={16: witness_16, 18: witness_16, 19: witness_19},
    )


def multi_output() -> Fixture:
    """One operator with three outputs, one of them empty, and an output that is also read.

    x(5) w(7) -a-> m1(4), m2(0), o1(3, output); m1 -b-> o2(6, output); m2 o1 -c-> o3(2, output).
    Working sets a 5+7+4+0+3 = 19, b 10, c 5: M_R = 19. Order a,b,c: live 19, 13, 5; order
    a,c,b: 19, 9, 10. Compulsory x + w + o1 + o2 + o3 = 23. Without weights: M_R 12,
    compulsory 16.
    """
    g = Graph.build(
        "multi_output",
        [
            _t("x", 5, "input"),
            _t("w", 7, "weight"),
            _t("m1", 4, "activation"),
            Tensor("m2", 0, "activation", (0, 3), "uint8"),
            _t("o1", 3, "output"),
            _t("o2", 6, "output"),
            _t("o3", 2, "output"),
        ],
        [
            _op("a", ("x", "w"), ("m1", "m2", "o1"), "Split"),
            _op("b", ("m1",), ("o2",)),
            _op("c", ("m2", "o1"), ("o3",), "Add"),
        ],
    )
    witness_19 = (
        Load("x", 0),
        Load("w", 5),
        Run("a", (("m1", 12), ("m2", 0), ("o1", 16))),
        Free("x"),
        Free("w"),
        Store("o1"),
        Run("b", (("o2", 0),)),
        Store("o2"),
        Free("m1"),
        Free("o2"),
        Run("c", (("o3", 0),)),
        Store("o3"),
        Free("m2"),
        Free("o1"),
        Free("o3"),
    )
    return Fixture(
        graph=g,
        working_set={"a": 19, "b": 10, "c": 5},
        min_scratchpad=19,
        compulsory_bytes=23,
        live_bytes={("a", "b", "c"): (19, 13, 5), ("a", "c", "b"): (19, 9, 10)},
        lifetimes={"x": (0, 0), "w": (0, 0), "m1": (0, 1), "m2": (0, 2), "o1": (0, 2), "o2": (1, 1), "o3": (2, 2)},
        min_peak=19,
        optimal_extra={19: 0},
        witnesses={19: witness_19},
    )


def two_branches() -> Fixture:
    """Order matters: x(2) -a-> big(20) -b-> s1(1); x -c-> big2(20) -d-> s2(1); s1 s2 -e-> y(1).

    Working sets a 22, b 21, c 22, d 21, e 3: M_R = 22. Order a,b,c,d,e keeps one big tensor
    at a time (live 22, 23, 23, 22, 3: peak 23); a,c,b,d,e holds both (live 22, 42, 41, 22,
    3). M_P = 23 (a,b,c,d,e or c,d,a,b,e).

    Budget 22: any order holding big and big2 together pays >= 40. Otherwise (a,b,c,d,e or
    its mirror) at b, x (read again by c) cannot stay beside big + s1 (23 > 22): one reload
    of x, 2; at c, s1 (read by e) cannot stay beside x + big2: store and reload, 2. >= 4,
    and the witness pays 4. At 23: 0.
    """
    g = Graph.build(
        "two_branches",
        [
            _t("x", 2, "input"),
            _t("big", 20, "activation"),
            _t("s1", 1, "activation"),
            _t("big2", 20, "activation"),
            _t("s2", 1, "activation"),
            _t("y", 1, "output"),
        ],
        [
            _op("a", ("x",), ("big",)),
            _op("c", ("x",), ("big2",)),
            _op("b", ("big",), ("s1",)),
            _op("d", ("big2",), ("s2",)),
            _op("e", ("s1", "s2"), ("y",), "Add"),
        ],
    )
    witness_22 = (
        Load("x", 20),
        Run("a", (("big", 0),)),
        Free("x"),
        Run("b", (("s1", 20),)),
        Free("big"),
        Store("s1"),
        Free("s1"),
        Load("x", 20),
        Run("c", (("big2", 0),)),
        Free("x"),
        Run("d", (("s2", 20),)),
        Free("big2"),
        Load("s1", 0),
        Run("e", (("y", 1),)),
        Store("y"),
        Free("s1"),
        Free("s2"),
        Free("y"),
    )
    witness_23 = (
        Load("x", 20),
        Run("a", (("big", 0),)),
        Run("b", (("s1", 22),)),
        Free("big"),
        Run("c", (("big2", 0),)),
        Free("x"),
        Run("d", (("s2", 20),)),
        Free("big2"),
        Run("e", (("y", 21),)),
        Store("y"),
        Free("s1"),
        Free("s2"),
        Free("y"),
    )
    return Fixture(
        graph=g,
        working_set={"a": 22, "b": 21, "c": 22, "d": 21, "e": 3},
        min_scratchpad=22,
        compulsory_bytes=3,
        live_bytes={("a", "b", "c", "d", "e"): (22, 23, 23, 22, 3), ("a", "c", "b", "d", "e"): (22, 42, 41, 22, 3)},
        lifetimes={"x": (0, 1), "big": (0, 2), "big2": (1, 3), "s1": (2, 4), "s2": (3, 4), "y": (4, 4)},
        min_peak=23,
        optimal_extra={22: 4, 23: 0},
        witnesses={22: witness_22, 23: witness_23},
    )


FIXTURES: dict[str, Callable[[], Fixture]] = {
    "chain": chain,
    "diamond": diamond,
    "fan_out": fan_out,
    "skip": skip,
    "multi_output": multi_output,
    "two_branches": two_branches,
}
