"""Property tests for the reactive engine: random graphs, random writes, checked from scratch.

A random DAG of signals and computeds is built from ``Spec``s. Each computed sums some earlier
nodes modulo a small prime (so equal results, and therefore cutoffs, are common) and may branch
on one input's parity (a dependency switch). After every write or batch of writes:

* **correct**: every computed read equals a pure, from-scratch evaluation of the specs;
* **minimal**: a body ran at most once, and only if it never ran before or one of the inputs
  it read last time has a new version (a signal counts every effective ``set``, so ``3 -> 5 ->
  3`` within a batch counts as a change, as in Preact; a computed counts results that differ
  from its previous one). Versions are counted here, by the test, never read from the engine;
* **lazy**: a body ran only if something read it: a read root, or a body that read or checked
  it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from signalpy_lab.kernel.graph import graph_stats
from signalpy_lab.kernel.reactive import Computed, Effect, Scope, Signal, batch

PRIME = 7
MODEST = settings(max_examples=200, deadline=None)


@dataclass(frozen=True)
class Spec:
    """One computed: ``(salt + inputs) % PRIME``; with ``alt``, a branch on ``inputs[0]``'s parity.

    Without ``alt`` it reads every input. With ``alt`` it reads ``inputs[0]`` (the condition),
    then ``inputs[1:]`` when that is even, else ``alt``.
    """

    inputs: tuple[int, ...]
    alt: tuple[int, ...] | None
    salt: int

    def apply(self, read: Callable[[int], int]) -> int:
        if self.alt is None:
            return (self.salt + sum(read(i) for i in self.inputs)) % PRIME
        condition = read(self.inputs[0])
        rest = self.inputs[1:] if condition % 2 == 0 else self.alt
        return (self.salt + condition + sum(read(i) for i in rest)) % PRIME


def from_scratch(specs: list[Spec], signal_values: list[int]) -> list[int]:
    """Every node's value by plain evaluation in index order (inputs always come earlier)."""
    values = list(signal_values)
    for spec in specs:
        values.append(spec.apply(values.__getitem__))
    return values


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, list[Spec]]:
    """A signal count and the specs of the computeds built on them (node ``i`` reads ``< i``)."""
    n_signals = draw(st.integers(1, 4))
    specs = []
    for j in range(draw(st.integers(1, 10))):
        earlier = st.integers(0, n_signals + j - 1)
        inputs = draw(st.lists(earlier, min_size=1, max_size=3, unique=True))
        alt = draw(st.none() | st.lists(earlier, max_size=3, unique=True).map(tuple))
        specs.append(Spec(tuple(inputs), alt, draw(st.integers(0, PRIME - 1))))
    return n_signals, specs


#: A write: (signal index, taken modulo the signal count; value).
writes = st.tuples(st.integers(0, 3), st.integers(0, 9))
#: One step: a single ``set``, or several inside one ``batch()``.
steps = st.one_of(
    writes.map(lambda write: ([write], False)),
    st.lists(writes, min_size=1, max_size=4).map(lambda batched: (batched, True)),
)


class Model:
    """The engine graph for some specs, instrumented by the test itself.

    Node indices: signals first, then computeds. ``versions`` counts changes of each node as
    the test sees them; ``reads[j]`` is what computed (or effect) ``j`` read on its last run,
    with the version of each input at that moment.
    """

    def __init__(self, n_signals: int, specs: list[Spec], effect_inputs: list[list[int]]
                 ) -> None:
        self.n_signals = n_signals
        self.specs = specs
        self.scope = Scope("property")
        self.signals = [Signal(0, owner=self.scope) for _ in range(n_signals)]
        self.values = [0] * n_signals  # the signals' values, kept by the test
        self.versions = [0] * (n_signals + len(specs))
        self.results: list[int | None] = [None] * len(specs)
        self.runs = [0] * len(specs)
        self.reads: list[dict[int, int] | None] = [None] * len(specs)
        self.computeds = [
            Computed(self._body(j), owner=self.scope, label=f"c{j}") for j in range(len(specs))
        ]
        self.nodes = [*self.signals, *self.computeds]
        self.effect_runs = [0] * len(effect_inputs)
        self.effect_seen: list[list[int]] = [[] for _ in effect_inputs]
        self.effect_reads: list[dict[int, int]] = [{} for _ in effect_inputs]
        self.effects = [
            Effect(self._effect_body(k, inputs), owner=self.scope, label=f"e{k}")
            for k, inputs in enumerate(effect_inputs)
        ]

    def _tracked_read(self, reads: dict[int, int]) -> Callable[[int], int]:
        def read(i: int) -> int:
            value: int = self.nodes[i].get()
            reads[i] = self.versions[i]  # read after get(): the input is up to date by now
            return value

        return read

    def _body(self, j: int) -> Callable[[], int]:
        def body() -> int:
            self.runs[j] += 1
            reads: dict[int, int] = {}
            value = self.specs[j].apply(self._tracked_read(reads))
            if value != self.results[j]:
                self.versions[self.n_signals + j] += 1
            self.results[j] = value
            self.reads[j] = reads
            return value

        return body

    def _effect_body(self, k: int, inputs: list[int]) -> Callable[[], None]:
        def body() -> None:
            self.effect_runs[k] += 1
            reads: dict[int, int] = {}
            read = self._tracked_read(reads)
            self.effect_seen[k] = [read(i) for i in inputs]
            self.effect_reads[k] = reads

        return body

    def write(self, writes: list[tuple[int, int]], batched: bool) -> None:
        """Apply the writes (signal indices taken modulo the signal count)."""
        writes = [(index % self.n_signals, value) for index, value in writes]
        if batched:
            with batch():
                for index, value in writes:
                    self._set(index, value)
        else:
            for index, value in writes:
                self._set(index, value)

    def _set(self, index: int, value: int) -> None:
        changed = self.signals[index].set(value)
        assert (value != self.values[index]) == changed
        if changed:
            self.values[index] = value
            self.versions[index] += 1

    def expected(self) -> list[int]:
        return from_scratch(self.specs, self.values)


def changed_since(reads: dict[int, int] | None, versions: list[int]) -> bool:
    """Whether a body that read ``reads`` last time has a reason to run again."""
    return reads is None or any(versions[i] != version for i, version in reads.items())


def reached(roots: list[int], edges: list[set[int]], n_signals: int) -> set[int]:
    """Computed indices reachable from the node indices ``roots`` along ``edges``."""
    seen: set[int] = set()
    stack = [r - n_signals for r in roots if r >= n_signals]
    while stack:
        j = stack.pop()
        if j not in seen:
            seen.add(j)
            stack.extend(i - n_signals for i in edges[j] if i >= n_signals)
    return seen


def check_step(model: Model, runs_before: list[int], reads_before: list[dict[int, int] | None],
               roots: list[int]) -> None:
    """Minimality and laziness of the computeds' runs in one step (``roots`` were read)."""
    for j, (before, after) in enumerate(zip(runs_before, model.runs)):
        assert after - before <= 1, f"c{j} ran {after - before} times in one step"
        if after > before:
            assert changed_since(reads_before[j], model.versions), (
                f"c{j} re-ran although nothing it read last time changed "
                f"(read {reads_before[j]}, versions now {model.versions})"
            )
    edges = [set(before or ()) | set(after or ())
             for before, after in zip(reads_before, model.reads)]
    needed = reached(roots, edges, model.n_signals)
    ran = {j for j, (before, after) in enumerate(zip(runs_before, model.runs)) if after > before}
    assert ran <= needed, f"c{sorted(ran - needed)} ran although nothing read them"


def finish(model: Model, baseline: dict[str, int]) -> None:
    """Dispose the model's scope: every node and link it made is gone again."""
    model.scope.dispose()
    assert baseline == graph_stats()
    assert [{}] * model.n_signals == [s.subs for s in model.signals]


@MODEST
@given(graph=graphs(), data=st.data())
def test_computeds_match_a_from_scratch_evaluation_and_run_minimally(
        graph: tuple[int, list[Spec]], data: st.DataObject) -> None:
    """After every write or batch, the computeds read are correct, and no body ran needlessly."""
    baseline = graph_stats()
    n_signals, specs = graph
    model = Model(n_signals, specs, effect_inputs=[])
    n_nodes = n_signals + len(specs)
    computed_indices = st.integers(n_signals, n_nodes - 1)

    for writes, batched in data.draw(st.lists(steps, max_size=12), label="steps"):
        runs_before, reads_before = list(model.runs), list(model.reads)
        model.write(writes, batched)
        assert runs_before == model.runs, "a computed ran although nothing read it"
        roots = data.draw(st.lists(computed_indices, unique=True), label="read")
        actual = [model.nodes[i].get() for i in roots]
        expected = model.expected()
        assert [expected[i] for i in roots] == actual
        check_step(model, runs_before, reads_before, roots)

    everything = list(range(n_signals, n_nodes))
    assert model.expected()[n_signals:] == [model.nodes[i].get() for i in everything]
    finish(model, baseline)


@MODEST
@given(graph=graphs(), data=st.data())
def test_effects_run_at_most_once_per_batch_and_see_final_values(
        graph: tuple[int, list[Spec]], data: st.DataObject) -> None:
    """Effects over random computeds and signals: after each step an effect has seen the
    final values, ran at most once, and only if something it read changed."""
    baseline = graph_stats()
    n_signals, specs = graph
    n_nodes = n_signals + len(specs)
    node_indices = st.integers(0, n_nodes - 1)
    effect_inputs = data.draw(
        st.lists(st.lists(node_indices, min_size=1, max_size=4, unique=True),
                 min_size=1, max_size=3),
        label="effect inputs",
    )
    model = Model(n_signals, specs, effect_inputs)
    assert [1] * len(effect_inputs) == model.effect_runs

    for writes, batched in data.draw(st.lists(steps, max_size=12), label="steps"):
        runs_before, reads_before = list(model.runs), list(model.reads)
        effect_runs_before = list(model.effect_runs)
        effect_reads_before = [dict(reads) for reads in model.effect_reads]
        model.write(writes, batched)
        expected = model.expected()

        for k, inputs in enumerate(effect_inputs):
            ran = model.effect_runs[k] - effect_runs_before[k]
            assert ran <= 1, f"e{k} ran {ran} times for one step"
            assert [expected[i] for i in inputs] == model.effect_seen[k]
            if ran:
                assert changed_since(effect_reads_before[k], model.versions), (
                    f"e{k} re-ran although nothing it read changed"
                )
        roots = [i for inputs in effect_inputs for i in inputs]
        check_step(model, runs_before, reads_before, roots)

    finish(model, baseline)
