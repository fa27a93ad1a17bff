"""Magic lines: a trailing `# comment` is a comment on every magic of ours, and a misspelled
magic names the closest one."""

from __future__ import annotations

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from signalpy_lab.lab.lines import strip_comment
from signalpy_lab.lab.magics import LabMagics
from signalpy_lab.testing import LabShell

COMMENT = "  # not for the magic: --bogus tabel=1 'x"  # breaks any magic it would reach


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("set k v  # why", "set k v"),
        ("set k v\t# after a tab", "set k v"),
        ("# only a comment", ""),
        ("set k postgres://db/x#frag", "set k postgres://db/x#frag"),
        ("set k a#b # c", "set k a#b"),
        ('set k "a # b"  # c', 'set k "a # b"'),
        ("set k 'a # b'", "set k 'a # b'"),
        ('set k {"note": "#1 \\" # still inside"}  # c', 'set k {"note": "#1 \\" # still inside"}'),
        ("set motd it's up  # c", "set motd it's up"),
        ("set k v #", "set k v"),
        ("set k v", "set k v"),
        ("set k v  ", "set k v  "),
    ],
)
def test_the_comment_rule(line, expected) -> None:
    """A `#` after whitespace, outside quotes, starts a comment; glued or quoted it is a value."""
    assert expected == strip_comment(line)


# Every magic of ours, with a line it accepts, and what shows that it ran as meant. The
# comment would break each one if it reached it (an unknown flag, an unknown key, a bad value).
CASES = {
    "discover": ("%discover signalpy_lab.examples.multi_tenant.TenantDatabase",
                 lambda lab, out: "discovered: tenant-db" in lab.output),
    "instantiate": ("%instantiate tenant-db tenant-db-umbrella target=umbrella",
                    lambda lab, out: lab.user_ns["kernel"].instance(
                        "tenant-db-umbrella").properties == {"target": "umbrella"}),
    "restart": ("%restart tenant-db-acme",
                lambda lab, out: "tenant-db-acme: active (in this process)" in lab.output),
    "boot": ("%boot", lambda lab, out: lab.output.startswith("already running")),
    "shutdown": ("%shutdown", lambda lab, out: lab.output.startswith("kernel stopped")),
    "reset": ("%reset", lambda lab, out: lab.output == "fresh kernel booted\n"),
    "remove": ("%remove tenant-db-acme", lambda lab, out: lab.output == "removed tenant-db-acme\n"),
    "kernel": ("%kernel", lambda lab, out: out is lab.user_ns["kernel"]),
    "invoke": ("%invoke tenant-db.query target=acme table=orders",
               lambda lab, out: (out["tenant"], out["table"]) == ("acme", "orders")),
    "config": ("%config set tenants.acme.pool 7",
               lambda lab, out: lab.run("%config get tenants.acme.pool") == 7),
    "%%config": ("%%config\ntenants: {acme: {pool: 7}}\n",
                 lambda lab, out: lab.run("%config get tenants.acme.pool") == 7),
    "instances": ("%instances", lambda lab, out: "tenant-db-acme" in str(out)),
    "factories": ("%factories", lambda lab, out: "tenant-db" in str(out)),
    "routes": ("%routes", lambda lab, out: "tenant-db.query[acme]" in str(out)),
    "graph": ("%graph --text", lambda lab, out: "tenant-db-acme.db_url" in str(out)),
    "bus": ("%bus --text", lambda lab, out: "tenant-db.query[acme]" in str(out)),
    "why": ("%why tenant-db-acme.db_url", lambda lab, out: out.label == "tenant-db-acme.db_url"),
    "lab": ("%lab --text", lambda lab, out: "Events (newest first)" in lab.output),
    "events": ("%events --limit 3", lambda lab, out: len(out.rows) == 3),
    "%%as": ("%%as tenant-db-acme\nrt.target\n", lambda lab, out: out == "acme"),
}


def test_the_cases_cover_every_magic_of_ours() -> None:
    """A new magic must be added to CASES: no magic of ours escapes the comment rule."""
    ours = set(LabMagics.magics["line"]) | {f"%%{n}" for n in LabMagics.magics["cell"]}
    assert ours == set(CASES)


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run("%discover signalpy_lab.examples.multi_tenant.TenantDatabase")
        shell.run("%instantiate tenant-db tenant-db-acme target=acme")
        shell.run("%invoke tenant-db.query target=acme")
        yield shell


@pytest.mark.parametrize("magic", sorted(CASES))
def test_every_magic_of_ours_ignores_a_trailing_comment(lab, magic) -> None:
    """`%magic ARGS  # comment` (a cell magic's first line) does what `%magic ARGS` does."""
    cell, ran_as_meant = CASES[magic]
    first, newline, body = cell.partition("\n")
    out = lab.run(first + COMMENT + newline + body)
    assert ran_as_meant(lab, out), lab.output


def test_a_variable_holding_a_hash_is_not_cut(lab) -> None:
    """The comment goes before `{var}` expansion: a value's ` #` is the value's."""
    lab.run('motd = "open # 24/7"')
    lab.run("%config set motd {motd}  # the sign on the door")
    assert lab.run("%config get motd") == "open # 24/7"


def test_the_header_comment_of_config_is_no_prefix(lab) -> None:
    """`%%config  # YAML or JSON` merges at the top, as a bare `%%config` does."""
    lab.run("%%config  # YAML or JSON, deep-merged\nregion: eu\n")
    assert lab.output == "merged 1 key(s)\n"
    assert lab.run("%config get region") == "eu"


def test_the_cell_that_loads_the_lab_uses_it_with_comments() -> None:
    """`%load_ext` and a commented magic in one cell: read before the lab existed, still fine."""
    with LabShell(load=False) as shell:
        shell.run("%load_ext signalpy_lab\n%config set region eu  # the default region")
        assert shell.run("%config get region") == "eu"
        shell.run("%unload_ext signalpy_lab")


@pytest.mark.parametrize(
    "line",
    [
        "%config InteractiveShell.ast_node_interactivity = 'last_expr'  # IPython's",
        "%reset -f  # IPython's namespace reset",
    ],
)
def test_ipythons_own_uses_keep_their_comment(lab, line, monkeypatch) -> None:
    """`%config Class.trait = v  # c` and `%reset -f  # c` reach IPython's magic unchanged."""
    name = line.split()[0][1:]
    received = []
    magics = lab.shell.magics_manager.registry["LabMagics"]
    attribute = {"config": "_ipython_config", "reset": "_ipython_reset"}[name]
    monkeypatch.setattr(magics, attribute, received.append)
    lab.run(line)
    assert received == [line.split(" ", 1)[1]]


def test_a_misspelled_magic_names_the_closest(lab) -> None:
    """`%instanciate`, `x = %instanciate`, `%%confg`: one line naming the magic meant."""
    assert lab.usage_error("%instanciate tenant-db x") == (
        "Line magic function `%instanciate` not found. Did you mean %instantiate or "
        "%instances? (%lsmagic lists every magic.)")
    assert "Did you mean %instantiate" in lab.usage_error("x = %instanciate tenant-db")
    assert lab.usage_error("%%confg\nregion: eu\n") == (
        "Cell magic `%%confg` not found. Did you mean %%config or %config? "
        "(%lsmagic lists every magic.)")
    assert "Did you mean %timeit" in lab.usage_error("%timeot 1 + 1")  # IPython's too


def test_nothing_close_keeps_ipythons_message(lab) -> None:
    """No near name: IPython's own words, its cell-magic hint included."""
    assert lab.usage_error("%zzzqqq") == "Line magic function `%zzzqqq` not found."
    assert lab.usage_error("%as tenant-db-acme") == (
        "Line magic function `%as` not found (But cell magic `%%as` exists, did you mean that "
        "instead?).")


def test_a_cell_magic_in_the_middle_of_a_cell_is_refused_before_anything_runs(lab) -> None:
    """`%%config` below a cell's first line cannot run: say so, and run none of the cell."""
    message = lab.usage_error("x = 1\n%%config\nregion: eu\n")
    assert message == ("%%config is a cell magic: it must be the first line of its cell, "
                       "with its body below it. Start a new cell with it.")
    assert "x" not in lab.user_ns


def test_a_magic_loaded_earlier_in_the_same_cell_runs(lab) -> None:
    """Unknown when the cell was read, known when its line runs: it just runs."""
    lab.run("%load_ext autoreload\n%autoreload 0")
    assert "autoreload" in lab.shell.magics_manager.magics["line"]


def test_everything_else_passes_through_untouched(lab) -> None:
    """Known magics, IPython's own, plain code and strings that merely look like calls."""
    cells = [
        "%config InlineBackend  # IPython's\n",
        "%time x = 1\n",
        "r = %invoke tenant-db.query target=acme  # ours\n",
        "s = \"get_ipython().run_line_magic('instanciate', '')\"\n",
        "def f():\n    return 1  # a comment\n",
    ]
    plain = TransformerManager()  # IPython's transforms alone
    for cell in cells:
        assert plain.transform_cell(cell) == lab.shell.transform_cell(cell)
