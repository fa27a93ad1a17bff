"""Secrets in views: nodes built from one masked whole, and current and rotated-out secret
strings masked inside any text, at a bounded cost.

The process-wide redactor is shared by every test, so these tests give it strings nobody
else uses, or build a redactor of their own.
"""

from __future__ import annotations

import gc
import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalpy_lab.kernel import Computed, Signal, redaction
from signalpy_lab.kernel.events import EventHub
from signalpy_lab.kernel.introspection import snapshot_graph
from signalpy_lab.kernel.reactive import Scope
from signalpy_lab.kernel.redaction import (
    MASK,
    MIN_SECRET_LENGTH,
    SecretSignal,
    redact,
    redact_tree,
    register_secret_source,
    retired_secrets,
    secrets_changed,
)
from signalpy_lab.providers.keyspace import Keyspace, parse_key


class Source:
    """A secret source whose values a test sets by hand."""

    def __init__(self, *values: str) -> None:
        self.values = list(values)

    def secret_values(self) -> list[str]:
        return self.values


def unique(word: str) -> str:
    """A secret no other test registers (the redactor is process-wide)."""
    return f"{word}-{uuid.uuid4().hex[:12]}"


def test_a_rotated_out_secret_stays_masked_while_its_source_lives() -> None:
    """The source replaced ``old`` by ``new`` and said so: both are masked from then on."""
    old, new = unique("old-pw"), unique("new-pw")
    source = Source(old)
    register_secret_source(source)
    source.values = [new]
    secrets_changed(source, [old])
    assert f"dsn://app:{MASK}@db and {MASK}" == redact(f"dsn://app:{old}@db and {new}")
    assert {"dsn": f"u:{MASK}@db"} == redact_tree({"dsn": f"u:{old}@db"})
    assert [old] == retired_secrets(source)


def test_without_the_report_a_replaced_secret_would_show() -> None:
    """The control: a source that changed without naming what it replaced loses the old one."""
    old, new = unique("old-pw"), unique("new-pw")
    source = Source(old)
    register_secret_source(source)
    source.values = [new]
    secrets_changed(source)
    assert f"{old} {MASK}" == redact(f"{old} {new}")


def test_one_sources_history_goes_with_it() -> None:
    """A kernel's rotated-out secrets do not outlive its config: another kernel's text that
    happens to contain them is left alone once the source is gone."""
    old = unique("old-pw")
    source = Source()
    register_secret_source(source)
    secrets_changed(source, [old])
    assert MASK == redact(old)
    del source
    gc.collect()
    assert old == redact(old)


def test_the_config_keyspace_reports_what_a_write_unset_or_merge_replaced() -> None:
    """``apps.`` values replaced by ``write``, removed by ``delete`` or merged over by
    ``merge_defaults`` stay masked; a value still there is not counted as retired."""
    first, second, third, seeded, kept = (unique(w) for w in (
        "first", "second", "third", "seeded", "kept"))
    keys = Keyspace({"apps": {"db": {"password": seeded, "user": kept}}}, secret_prefix="apps")
    keys.write(parse_key("apps.db.password"), first)
    keys.write(parse_key("apps.db.password"), second)
    keys.merge_defaults(parse_key("apps.db"), {"user": third})
    keys.delete(parse_key("apps.db.password"))  # the seeded default shows through again
    assert [first, kept, second] == [v for v in retired_secrets(keys) if v != seeded]
    assert [MASK] * 5 == [redact(v) for v in (first, second, third, seeded, kept)]
    keys.write(parse_key("region"), "not-a-secret-value")  # outside apps.: nothing retired
    assert 4 == len(retired_secrets(keys))


def test_the_history_is_bounded_oldest_forgotten_first(monkeypatch) -> None:
    """Past ``RETIRED_SECRETS`` values, or ``RETIRED_CHARACTERS`` characters, the oldest
    rotated-out values are forgotten; a value retired again counts as the newest."""
    monkeypatch.setattr(redaction, "RETIRED_SECRETS", 3)
    monkeypatch.setattr(redaction, "RETIRED_CHARACTERS", 12)
    redactor = redaction._Redactor()
    source = Source()
    redactor.register(source)
    redactor.changed(source, ["aaaa", "bbbb", "cccc"])
    redactor.changed(source, ["aaaa", "dddd"])
    assert ["cccc", "aaaa", "dddd"] == redactor.retired(source)
    redactor.changed(source, ["eeeeeeee"])
    assert ["dddd", "eeeeeeee"] == redactor.retired(source)
    assert "aaaa cccc •••••• ••••••" == redactor.rebuild().sub(MASK, "aaaa cccc dddd eeeeeeee")


def test_short_values_are_never_searched_for() -> None:
    """A three-character secret would mask every table; it is masked where its node shows."""
    source = Source()
    redactor = redaction._Redactor()
    redactor.register(source)
    redactor.changed(source, ["abc", "x" * MIN_SECRET_LENGTH])
    assert ["x" * MIN_SECRET_LENGTH] == redactor.retired(source)


def test_with_no_secret_redact_hands_back_the_same_text() -> None:
    """Nothing registered: the pattern is None and ``redact`` returns its argument."""
    redactor = redaction._Redactor()
    assert (None, None) == (redactor.pattern, redactor.rebuild())
    text = "postgres://app:pw@db"
    saved = redaction._redactor
    redaction._redactor = redactor
    try:
        assert text is redact(text)
        assert ({"a": text},) == (redact_tree({"a": text}),)
    finally:
        redaction._redactor = saved


def test_a_change_during_a_compile_is_never_lost() -> None:
    """A secret added while the pattern compiles leaves it stale, so the next use sees it."""
    added = unique("added-pw")
    redactor = redaction._Redactor()

    class Racing(Source):
        def secret_values(self) -> list[str]:
            values = list(self.values)
            if added not in self.values:  # a write lands between reading and compiling
                self.values.append(added)
                redactor.changed(self)
            return values

    source = Racing(unique("first-pw"))
    redactor.register(source)
    redactor.rebuild()
    assert redaction._STALE is redactor.pattern
    assert MASK == redactor.rebuild().sub(MASK, added)


def test_secrets_that_prefix_each_other_compile_and_mask_the_longest() -> None:
    """Thousands of secrets, each a prefix of the next: the trie's nesting is capped."""
    values = {"a" * n for n in range(MIN_SECRET_LENGTH, 400)}
    pattern = redaction._compile(values)
    assert f"b{MASK}b" == pattern.sub(MASK, "b" + "a" * 120 + "b")


def flat(values: set[str], text: str) -> str:
    """What a flat alternation, longest first, makes of ``text`` (the reference)."""
    ordered = sorted(values, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))).sub(MASK, text)


@given(st.sets(st.text("ab.-*", min_size=MIN_SECRET_LENGTH, max_size=9), min_size=1,
               max_size=15),
       st.text("ab.-*x", max_size=60))
def test_the_trie_masks_exactly_what_a_flat_alternation_masks(values: set[str],
                                                             text: str) -> None:
    """Leftmost match, longest secret there: the trie changes the cost, never the result."""
    assert flat(values, text) == redaction._compile(values).sub(MASK, text)


def test_a_secret_among_thousands_is_found_in_a_line() -> None:
    """2,000 secrets in one trie: the one inside the line is masked, the rest of it is not."""
    values = {uuid.uuid4().hex for _ in range(2000)}
    secret = sorted(values)[1000]
    pattern = redaction._compile(values)
    assert f"postgres://app:{MASK}@db/app" == pattern.sub(MASK, f"postgres://app:{secret}@db/app")


# -- nodes built from a secret ---------------------------------------------------------


def graph_values(scope: Scope) -> dict[str, tuple[str, str | None]]:
    """label -> (value, error) as every view of the graph renders them."""
    return {n.label: (n.value, n.error) for n in snapshot_graph([scope]).nodes}


def test_every_node_downstream_of_a_secret_is_masked_at_any_depth() -> None:
    """A chain from a secret signal, three levels deep, is masked whole; a sibling reading
    only a plain signal is not::

        password (secret) ─▶ dsn ─▶ upper ─▶ reversed
        host ──────────────────────────────▶ url
    """
    with Scope("client").active() as scope:
        password = SecretSignal("hunter2", label="client.password")
        host = Signal("db", label="client.host")
        dsn = Computed(lambda: f"pg://app:{password()}@{host()}", label="client.dsn")
        upper = Computed(lambda: dsn().upper(), label="client.upper")
        backwards = Computed(lambda: upper()[::-1], label="client.reversed")
        url = Computed(lambda: f"http://{host()}", label="client.url")
    assert "BD@2RETNUH:PPA//:GP" == backwards()
    assert "http://db" == url()
    assert {"client.password": (MASK, None), "client.host": ("'db'", None),
            "client.dsn": (MASK, None), "client.upper": (MASK, None),
            "client.reversed": (MASK, None), "client.url": ("'http://db'", None),
            } == graph_values(scope)


def test_a_reader_linked_before_its_input_read_the_secret_is_masked_too() -> None:
    """``dsn`` read ``password`` while it read no secret; when ``password`` switches to the
    secret, ``dsn`` (already linked) is marked through ``password``'s readers."""
    with Scope("client").active() as scope:
        use_vault = Signal(False, label="client.use_vault")
        vault = SecretSignal("hunter2", label="client.vault")
        password = Computed(lambda: vault() if use_vault() else "none", label="client.password")
        dsn = Computed(lambda: f"pg://app:{password()}@db", label="client.dsn")
    assert "pg://app:none@db" == dsn()
    assert "'pg://app:none@db'" == graph_values(scope)["client.dsn"][0]
    use_vault.set(True)
    password()  # dsn is not read again: stale, its old value still there
    assert (MASK, MASK) == (graph_values(scope)["client.password"][0],
                            graph_values(scope)["client.dsn"][0])


def test_a_node_that_once_read_a_secret_stays_masked_after_it_stops() -> None:
    """Sticky: after the switch away, ``picked`` holds a plain value, but its readers may
    still hold one built from the secret, and nothing tells them apart cheaply."""
    with Scope("client").active() as scope:
        use_secret = Signal(True, label="client.use_secret")
        secret = SecretSignal("hunter2", label="client.secret")
        picked = Computed(lambda: secret() if use_secret() else "no secret",
                          label="client.picked")
    assert "hunter2" == picked()
    use_secret.set(False)
    assert ("no secret", MASK) == (picked(), graph_values(scope)["client.picked"][0])


def test_the_error_of_a_node_built_from_a_secret_keeps_its_type_only() -> None:
    """An error message can quote the secret as well as a value can: only its type shows."""
    with Scope("client").active() as scope:
        password = SecretSignal("hunter2", label="client.password")

        def check() -> str:
            raise ValueError(f"password {password()[::-1]!r} was refused")

        login = Computed(check, label="client.login")
    with pytest.raises(ValueError, match="2retnuh"):
        login()
    assert (MASK, f"ValueError: {MASK}") == graph_values(scope)["client.login"]


def test_events_carry_the_mask_for_a_node_two_levels_from_the_secret() -> None:
    """`computed.recomputed` of ``dsn`` (it reads ``password``, which reads the secret) and
    a write's old and new values of the secret signal: all masked."""
    hub = EventHub()
    seen: list[Any] = []
    unsubscribe = hub.subscribe(seen.append)
    try:
        with Scope("client", hub=hub).active():
            vault = SecretSignal("hunter2", label="client.vault")
            password = Computed(lambda: vault(), label="client.password")
            dsn = Computed(lambda: f"pg://app:{password()[::-1]}@db", label="client.dsn")
        dsn()
        vault.set("hunter3")
        dsn()
    finally:
        unsubscribe()
    values = [(e.label, e.value) for e in seen if e.kind == "computed.recomputed"]
    assert [("client.password", MASK), ("client.dsn", MASK)] * 2 == values
    write = next(e for e in seen if e.kind == "signal.set")
    assert (MASK, MASK) == (write.cause.old, write.cause.new)
