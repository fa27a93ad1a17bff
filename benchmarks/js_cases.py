"""The cases of js-reactivity-benchmark, ported to Python against a small framework interface.

Why: js-reactivity-benchmark (github.com/milomg/js-reactivity-benchmark) is the suite the
JavaScript signal libraries (alien-signals, Preact, Solid, Vue, Angular, ...) are compared on,
so a port gives our engine and its Python peers numbers on cases nobody here chose. Ported
from its ``packages/core/src`` at commit 56eb45e: the kairo cases (``benches/kairo/*.ts``),
cellx (``benches/cellxBench.ts``) and the six "dynamic" graphs of its seeded generator
(``benches/reactively/dependencyGraph.ts`` with ``config.ts``'s parameters and
``util/pseudoRandom.ts``'s generator, bit for bit).

The interface is the suite's ``ReactiveFramework``: ``signal(v)`` (``read()``/``write(v)``),
``computed(fn)`` (``read()``), ``effect(fn)``, ``with_batch(fn)``, ``with_build(fn)``,
``cleanup()``; ``js_frameworks.py`` adapts each library to it. The original's
``console.assert`` checks are kept, as real checks: a failing one raises ``CheckFailed``
(JavaScript's assert only logs), so a framework giving a wrong value gets no time.

Repetitions are scaled, never shapes: every case keeps its graph and the work of one
``iter()`` (kairo, cellx) or one iteration (dynamic); what ``scale`` divides is how many of
them one timed run does (kairo's 500 calls of ``iter()``, the dynamic graphs' iteration
counts). A dynamic graph runs the *last* ``iterations * scale`` of its published iterations,
its sources first set to where the full run leaves them before that slice, so its final
``sum`` is the published one exactly; its published ``count`` (computed runs over all
iterations) is ``iterations / width`` rounds of ``width`` writes each running the same
nodes, so the slice's count is the published count times the slice's share of the rounds
(``DynamicConfig.expected_count``; checked on the full runs by
``python -m benchmarks.js_suite --full-dynamic``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "CELLX_EXPECTED",
    "DYNAMIC_CONFIGS",
    "KAIRO_CASES",
    "CheckFailed",
    "Computed",
    "Counter",
    "DynamicConfig",
    "Framework",
    "Signal",
    "cellx",
    "make_graph",
    "pseudo_random",
    "run_graph",
]


class Signal(Protocol):
    def read(self) -> Any: ...
    def write(self, value: Any) -> None: ...


class Computed(Protocol):
    def read(self) -> Any: ...


class Framework(Protocol):
    """``ReactiveFramework`` of ``util/reactiveFramework.ts``."""

    name: str

    def signal(self, value: Any) -> Signal: ...
    def computed(self, fn: Callable[[], Any]) -> Computed: ...
    def effect(self, fn: Callable[[], Any]) -> None: ...
    def with_batch(self, fn: Callable[[], Any]) -> None: ...
    def with_build(self, fn: Callable[[], Any]) -> Any: ...
    def cleanup(self) -> None: ...


class CheckFailed(AssertionError):
    """A value the original suite asserts came out wrong."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Counter:
    """``util/counter.ts``: body runs, counted by the bodies themselves."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def busy() -> None:
    """``kairo/util``: a heavy computation, 100 increments."""
    a = 0
    for _ in range(100):
        a += 1  # noqa: SIM113 (the original's loop, on purpose: the work is the point)


# -- kairo ----------------------------------------------------------------------------------
# Each builder runs inside ``with_build`` and returns ``iter()``: one round of writes, each in
# its own batch, with the original's checks.


def avoidable_propagation(fw: Framework) -> Callable[[], None]:
    """``kairo/avoidable.ts``: a change that stops halfway (computed2 is always 0)."""
    head = fw.signal(0)
    computed1 = fw.computed(lambda: head.read())
    computed2 = fw.computed(lambda: (computed1.read(), 0)[1])
    computed3 = fw.computed(lambda: (busy(), computed2.read() + 1)[1])  # heavy computation
    computed4 = fw.computed(lambda: computed3.read() + 2)
    computed5 = fw.computed(lambda: computed4.read() + 3)

    def side_effect() -> None:
        computed5.read()
        busy()  # heavy side effect

    fw.effect(side_effect)

    def iterate() -> None:
        fw.with_batch(lambda: head.write(1))
        check(computed5.read() == 6, "computed5 != 6")
        for i in range(1000):
            fw.with_batch(lambda i=i: head.write(i))
            check(computed5.read() == 6, "computed5 != 6")

    return iterate


def broad_propagation(fw: Framework) -> Callable[[], None]:
    """``kairo/broad.ts``: one head, 50 branches of two computeds and an effect each."""
    head = fw.signal(0)
    last: Any = head
    call_counter = Counter()
    for i in range(50):
        current = fw.computed(lambda i=i: head.read() + i)
        current2 = fw.computed(lambda current=current: current.read() + 1)

        fw.effect(_reading(current2, call_counter))
        last = current2

    def iterate() -> None:
        fw.with_batch(lambda: head.write(1))
        atleast = 50 * 50
        call_counter.count = 0
        for i in range(50):
            fw.with_batch(lambda i=i: head.write(i))
            check(last.read() == i + 50, f"last != {i + 50}")
        check(call_counter.count == atleast, f"effect runs {call_counter.count} != {atleast}")

    return iterate


def _reading(node: Computed, counter: Counter) -> Callable[[], None]:
    """An effect body reading ``node`` and counting its runs (no parameters: some libraries
    pass a cleanup hook to an effect body that has any)."""

    def effect() -> None:
        node.read()
        counter.count += 1

    return effect


def deep_propagation(fw: Framework) -> Callable[[], None]:
    """``kairo/deep.ts``: a chain of 50 computeds under one effect."""
    length = 50
    head = fw.signal(0)
    current: Any = head
    for _ in range(length):
        current = fw.computed(lambda c=current: c.read() + 1)
    call_counter = Counter()
    end = current

    def effect() -> None:
        end.read()
        call_counter.count += 1

    fw.effect(effect)
    iterations = 50

    def iterate() -> None:
        fw.with_batch(lambda: head.write(1))
        call_counter.count = 0
        for i in range(iterations):
            fw.with_batch(lambda i=i: head.write(i))
            check(end.read() == length + i, f"end != {length + i}")
        check(call_counter.count == iterations,
              f"effect runs {call_counter.count} != {iterations}")

    return iterate


def diamond(fw: Framework) -> Callable[[], None]:
    """``kairo/diamond.ts``: 5 computeds of one head, summed, under one effect."""
    width = 5
    head = fw.signal(0)
    current = [fw.computed(lambda: head.read() + 1) for _ in range(width)]
    total = fw.computed(lambda: sum(x.read() for x in current))
    call_counter = Counter()

    def effect() -> None:
        total.read()
        call_counter.count += 1

    fw.effect(effect)

    def iterate() -> None:
        fw.with_batch(lambda: head.write(1))
        check(total.read() == 2 * width, f"sum != {2 * width}")
        call_counter.count = 0
        for i in range(500):
            fw.with_batch(lambda i=i: head.write(i))
            check(total.read() == (i + 1) * width, f"sum != {(i + 1) * width}")
        check(call_counter.count == 500, f"effect runs {call_counter.count} != 500")

    return iterate


def mux(fw: Framework) -> Callable[[], None]:
    """``kairo/mux.ts``: 100 heads into one dict, split again into 100 computeds + effects."""
    heads = [fw.signal(0) for _ in range(100)]
    muxed = fw.computed(lambda: dict(enumerate(h.read() for h in heads)))
    split = [fw.computed(lambda index=index: muxed.read()[index]) for index in range(100)]
    split = [fw.computed(lambda x=x: x.read() + 1) for x in split]
    for x in split:
        fw.effect(x.read)

    def iterate() -> None:
        for i in range(10):
            fw.with_batch(lambda i=i: heads[i].write(i))
            check(split[i].read() == i + 1, f"split[{i}] != {i + 1}")
        for i in range(10):
            fw.with_batch(lambda i=i: heads[i].write(i * 2))
            check(split[i].read() == i * 2 + 1, f"split[{i}] != {i * 2 + 1}")

    return iterate


def repeated_observers(fw: Framework) -> Callable[[], None]:
    """``kairo/repeated.ts``: one computed reading its head 30 times."""
    size = 30
    head = fw.signal(0)

    def body() -> int:
        result = 0
        for _ in range(size):
            result += head.read()
        return result

    current = fw.computed(body)
    call_counter = Counter()

    def effect() -> None:
        current.read()
        call_counter.count += 1

    fw.effect(effect)

    def iterate() -> None:
        fw.with_batch(lambda: head.write(1))
        check(current.read() == size, f"current != {size}")
        call_counter.count = 0
        for i in range(100):
            fw.with_batch(lambda i=i: head.write(i))
            check(current.read() == i * size, f"current != {i * size}")
        check(call_counter.count == 100, f"effect runs {call_counter.count} != 100")

    return iterate


def triangle(fw: Framework) -> Callable[[], None]:
    """``kairo/triangle.ts``: a chain of 10, every link also read by one sum."""
    width = 10
    head = fw.signal(0)
    current: Any = head
    links: list[Any] = []
    for _ in range(width):
        links.append(current)
        current = fw.computed(lambda c=current: c.read() + 1)
    total = fw.computed(lambda: sum(x.read() for x in links))
    call_counter = Counter()

    def effect() -> None:
        total.read()
        call_counter.count += 1

    fw.effect(effect)
    constant = sum(range(1, width + 1))

    def iterate() -> None:
        fw.with_batch(lambda: head.write(1))
        check(total.read() == constant, f"sum != {constant}")
        call_counter.count = 0
        for i in range(100):
            fw.with_batch(lambda i=i: head.write(i))
            expected = constant - width + i * width
            check(total.read() == expected, f"sum != {expected}")
        check(call_counter.count == 100, f"effect runs {call_counter.count} != 100")

    return iterate


def unstable(fw: Framework) -> Callable[[], None]:
    """``kairo/unstable.ts``: the worst case, dependencies switching on every write."""
    head = fw.signal(0)
    double = fw.computed(lambda: head.read() * 2)
    inverse = fw.computed(lambda: -head.read())

    def body() -> int:
        result = 0
        for _ in range(20):
            result += double.read() if head.read() % 2 else inverse.read()
        return result

    current = fw.computed(body)
    call_counter = Counter()

    def effect() -> None:
        current.read()
        call_counter.count += 1

    fw.effect(effect)

    def iterate() -> None:
        fw.with_batch(lambda: head.write(1))
        check(current.read() == 40, "current != 40")
        call_counter.count = 0
        for i in range(100):
            fw.with_batch(lambda i=i: head.write(i))
        check(call_counter.count == 100, f"effect runs {call_counter.count} != 100")

    return iterate


#: ``kairoBench.ts``'s cases (molBench left out: the list the issue names), in its order.
#: Each timed run is ``KAIRO_CALLS`` calls of ``iter()``, scaled.
KAIRO_CASES: dict[str, Callable[[Framework], Callable[[], None]]] = {
    "avoidablePropagation": avoidable_propagation,
    "broadPropagation": broad_propagation,
    "deepPropagation": deep_propagation,
    "diamond": diamond,
    "mux": mux,
    "repeatedObservers": repeated_observers,
    "triangle": triangle,
    "unstable": unstable,
}
KAIRO_CALLS = 500


# -- cellx ----------------------------------------------------------------------------------

#: ``cellxBench.ts``: layers -> (the end layer's four values before, after the writes).
CELLX_EXPECTED: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    1000: ((-3, -6, -2, 2), (-2, -4, 2, 3)),
    2500: ((-3, -6, -2, 2), (-2, -4, 2, 3)),
}
#: The original sums the update time of this many fresh builds.
CELLX_BUILDS = 10


def cellx(fw: Framework, layers: int) -> Callable[[], tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """``cellxBench.ts``: ``layers`` layers of four cells, each under an effect; returns the
    update (not timed in the original: the build), which reads the end, writes the four
    sources in one batch and reads the end again."""
    start = [fw.signal(1), fw.signal(2), fw.signal(3), fw.signal(4)]
    layer: list[Any] = start
    for _ in range(layers):
        m = layer
        s = [
            fw.computed(lambda m=m: m[1].read()),
            fw.computed(lambda m=m: m[0].read() - m[2].read()),
            fw.computed(lambda m=m: m[1].read() + m[3].read()),
            fw.computed(lambda m=m: m[2].read()),
        ]
        for cell in s:
            fw.effect(cell.read)
        layer = s
    end = layer

    def write() -> None:
        start[0].write(4)
        start[1].write(3)
        start[2].write(2)
        start[3].write(1)

    def update() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        before = tuple(cell.read() for cell in end)
        fw.with_batch(write)
        after = tuple(cell.read() for cell in end)
        return before, after

    return update


# -- dynamic graphs -------------------------------------------------------------------------

_M32 = 0xFFFFFFFF


def _imul(a: int, b: int) -> int:
    return (a * b) & _M32


def _xmur3a(text: str) -> Callable[[], int]:
    """MurmurHash3's mixing as a seed generator (``xmur3a`` of ``pseudoRandom.ts``)."""
    h = 2166136261
    for ch in text:
        k = _imul(ord(ch), 3432918353)
        k = ((k << 15) | (k >> 17)) & _M32
        h ^= _imul(k, 461845907)
        h = ((h << 13) | (h >> 19)) & _M32
        h = (_imul(h, 5) + 3864292196) & _M32
    h ^= len(text)

    def next_hash() -> int:
        nonlocal h
        h ^= h >> 16
        h = _imul(h, 2246822507)
        h ^= h >> 13
        h = _imul(h, 3266489909)
        h ^= h >> 16
        return h

    return next_hash


def pseudo_random(seed: str = "seed") -> Callable[[], float]:
    """``pseudoRandom()``: sfc32 seeded by xmur3a, the same floats as the JavaScript."""
    hash_ = _xmur3a(seed)
    a, b, c, d = hash_(), hash_(), hash_(), hash_()

    def sfc32() -> float:
        nonlocal a, b, c, d
        t = (a + b) & _M32
        a = b ^ (b >> 9)
        b = (c + (c << 3)) & _M32
        c = ((c << 21) | (c >> 11)) & _M32
        d = (d + 1) & _M32
        t = (t + d) & _M32
        c = (c + t) & _M32
        return t / 4294967296

    return sfc32


@dataclass(frozen=True)
class DynamicConfig:
    """A ``TestConfig`` of ``config.ts``: the graph, the iterations and the oracles."""

    width: int
    total_layers: int
    static_fraction: float
    n_sources: int
    read_fraction: float
    iterations: int
    sum: float
    count: int

    @property
    def title(self) -> str:
        """``makeTitle``: e.g. ``6-10x10 - dyn25% - lazy80%``."""
        dyn = (f" - dyn{round((1 - self.static_fraction) * 100)}%"
               if self.static_fraction < 1 else "")
        lazy = f" - lazy{round((1 - self.read_fraction) * 100)}%" if self.read_fraction < 1 else ""
        return f"{self.n_sources}-{self.width}x{self.total_layers}{dyn}{lazy}"

    @property
    def checks_count(self) -> bool:
        """``verifyBenchResult`` checks the count only when every leaf is read."""
        return self.read_fraction == 1

    def slice_iterations(self, scale: float) -> int:
        """Iterations of a scaled run: whole rounds of ``width`` writes, at least one."""
        rounds = self.iterations // self.width
        return self.width * max(1, round(rounds * scale))

    def expected_count(self, iterations: int) -> int:
        """The published count's share for the last ``iterations`` (whole rounds)."""
        assert iterations % self.width == 0, (iterations, self.width)
        assert self.iterations % self.width == 0, (self.iterations, self.width)
        return self.count * iterations // self.iterations

    def sum_matches(self, total: int) -> bool:
        """Our exact integer sum against the published JavaScript number (a double).

        Below 2**53 the double is exact, so they must be equal. Above (the 500-layer graph:
        about 3e241), JavaScript rounds every addition to 53 bits and we do not round at
        all, so the two may differ in the last few of 53 bits: compared to 1e-12.
        """
        if abs(total) < 2**53:
            return total == self.sum
        return math.isclose(total, self.sum, rel_tol=1e-12)


#: ``config.ts``'s ``perfTests``, in order, with their published sums and counts.
DYNAMIC_CONFIGS: tuple[DynamicConfig, ...] = (
    DynamicConfig(10, 5, 1, 2, 0.2, 600_000, 19199968, 3480000),
    DynamicConfig(10, 10, 3 / 4, 6, 0.2, 15_000, 302310782860, 1155000),
    DynamicConfig(1000, 12, 0.95, 4, 1, 7000, 29355933696000, 1463000),
    DynamicConfig(1000, 5, 1, 25, 1, 3000, 1171484375000, 732000),
    DynamicConfig(5, 500, 1, 3, 1, 500, 3.0239642676898464e241, 1246500),
    DynamicConfig(100, 15, 0.5, 6, 1, 2000, 15664996402790400, 1078000),
)


@dataclass
class Graph:
    sources: list[Signal]
    layers: list[list[Computed]]
    read_leaves: list[Computed]
    counter: Counter


def make_graph(fw: Framework, config: DynamicConfig) -> Graph:
    """``makeGraph``: rows of computeds over ``width`` sources, an effect reading the leaves.

    Call inside ``fw.with_build``.
    """
    sources = [fw.signal(i) for i in range(config.width)]
    counter = Counter()
    rows = _make_dependent_rows(sources, config.total_layers - 1, counter,
                                config.static_fraction, config.n_sources, fw)
    rand = pseudo_random()
    leaves = rows[-1]
    skip_count = math.floor(len(leaves) * (1 - config.read_fraction) + 0.5)  # Math.round
    read_leaves = _remove_elems(leaves, skip_count, rand)

    def read_all() -> None:
        for leaf in read_leaves:
            leaf.read()

    fw.effect(read_all)
    return Graph(sources, rows, read_leaves, counter)


def prepare_slice(graph: Graph, fw: Framework, config: DynamicConfig, iterations: int) -> int:
    """Set the sources where the full run leaves them before its last ``iterations``
    (untimed, in one batch); returns the first iteration of that slice.

    Called before every timed run, not once: a run that is one round of ``width`` writes
    would otherwise write, the second time, the values the first left (no change, no
    computed runs, count 0).
    """
    first = config.iterations - iterations
    width = len(graph.sources)
    values = []
    for j in range(width):
        # The last i < first with i % width == j; a source not yet written holds j.
        i = first - 1 - ((first - 1 - j) % width)
        values.append(i + j if i >= 0 else j)

    def write_all() -> None:
        for source, value in zip(graph.sources, values, strict=True):
            source.write(value)

    fw.with_batch(write_all)
    return first


def run_graph(graph: Graph, fw: Framework, first: int, stop: int) -> int:
    """``runGraph`` for iterations ``first .. stop - 1``: write one source per iteration in
    a batch, read the leaves; returns the sum of the leaves."""
    sources = graph.sources
    read_leaves = graph.read_leaves
    n = len(sources)
    for i in range(first, stop):
        source_dex = i % n
        fw.with_batch(lambda s=sources[source_dex], v=i + source_dex: s.write(v))
        for leaf in read_leaves:
            leaf.read()
    return sum(leaf.read() for leaf in read_leaves)


def _remove_elems(src: list[Any], rm_count: int, rand: Callable[[], float]) -> list[Any]:
    copy = list(src)
    for _ in range(rm_count):
        del copy[math.floor(rand() * len(copy))]
    return copy


def _make_dependent_rows(sources: list[Any], num_rows: int, counter: Counter,
                         static_fraction: float, n_sources: int,
                         fw: Framework) -> list[list[Computed]]:
    prev_row = sources
    random = pseudo_random()
    rows = []
    for _ in range(num_rows):
        row = _make_row(prev_row, counter, static_fraction, n_sources, fw, random)
        rows.append(row)
        prev_row = row
    return rows


def _make_row(sources: list[Any], counter: Counter, static_fraction: float, n_sources: int,
              fw: Framework, random: Callable[[], float]) -> list[Computed]:
    row = []
    for my_dex in range(len(sources)):
        my_sources = [sources[(my_dex + k) % len(sources)] for k in range(n_sources)]
        if random() < static_fraction:
            row.append(fw.computed(_static_node(my_sources, counter)))
        else:
            row.append(fw.computed(_dynamic_node(my_sources, counter)))
    return row


def _static_node(my_sources: list[Any], counter: Counter) -> Callable[[], int]:
    """A static node: always the sum of all its sources."""

    def body() -> int:
        counter.count += 1
        total = 0
        for src in my_sources:
            total += src.read()
        return total

    return body


def _dynamic_node(my_sources: list[Any], counter: Counter) -> Callable[[], int]:
    """A dynamic node: drops one of its sources, chosen by the value of the first."""
    first = my_sources[0]
    tail = my_sources[1:]
    length = len(tail)

    def body() -> int:
        counter.count += 1
        total = first.read()
        should_drop = total & 0x1
        drop_dex = total % length
        for i in range(length):
            if should_drop and i == drop_dex:
                continue
            total += tail[i].read()
        return total

    return body
