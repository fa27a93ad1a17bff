"""The magics, driven through IPython's InteractiveShell as a user would type them."""

from __future__ import annotations

import pytest

from signalpy_lab.kernel import ENGINE
from signalpy_lab.testing import LabShell

TOUR = """
from signalpy_lab.examples.multi_tenant import TenantDatabase
%discover TenantDatabase
"""


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run(TOUR)
        for tenant in ("acme", "globex", "initech"):
            shell.run(f"%config set tenants.{tenant}.db_url postgres://db/{tenant}")
            shell.run(f"%instantiate tenant-db tenant-db-{tenant} target={tenant}")
        yield shell


def test_load_gives_a_booted_kernel_with_the_embedded_providers() -> None:
    """`%load_ext signalpy_lab` boots config, logging, credentials and storage."""
    with LabShell() as lab:
        names = {i.name: i.state for i in lab.user_ns["kernel"].instances()}
        assert names == {"config": "active", "logging": "active", "credentials": "active",
                         "storage": "active"}


def test_invoke_returns_the_result_and_shows_the_route(lab) -> None:
    """`r = %invoke ...` assigns the handler's result; the route and time are printed."""
    lab.run("r = %invoke tenant-db.query target=globex table=orders")
    assert lab.user_ns["r"]["tenant"] == "globex"
    assert lab.user_ns["r"]["table"] == "orders"
    assert "tenant-db.query[globex] via target → tenant-db-globex.query in" in lab.output
    assert lab.run("%invoke tenant-db-acme.status")["tenant"] == "acme"
    assert "tenant-db-acme.status via exact in" in lab.output


def test_invoke_accepts_json_and_python_variables(lab) -> None:
    """Params as one JSON object, and `{var}` expansion as IPython does it."""
    assert lab.run('%invoke tenant-db.query {"target": "initech", "limit": 3}')["tenant"] == \
        "initech"
    lab.run("who = 'acme'")
    assert lab.run("%invoke tenant-db.query target={who}")["tenant"] == "acme"


def test_config_set_recomputes_only_the_affected_tenant(lab) -> None:
    """`%config set` on globex: only globex's computed goes stale, then recomputes."""
    for tenant in ("acme", "globex", "initech"):
        lab.run(f"%invoke tenant-db.query target={tenant}")
    lab.run("%config set tenants.globex.db_url postgres://migrated/globex")
    assert "stale now: tenant-db-globex.db_url" in lab.output
    lab.run("%invoke tenant-db.query target=globex")
    snapshot = lab.user_ns["kernel"].graph()
    runs = {n.label: n.runs for n in snapshot.nodes if n.kind == "computed"}
    assert runs == {"tenant-db-acme.db_url": 1, "tenant-db-globex.db_url": 2,
                    "tenant-db-initech.db_url": 1}


def test_config_get_shows_value_and_source(lab) -> None:
    """`%config get` returns the value and prints where it came from."""
    assert lab.run("%config get tenants.acme.db_url") == "postgres://db/acme"
    assert "(source: runtime)" in lab.output
    lab.run("%config unset tenants.acme.db_url")
    assert lab.run("%config get tenants.acme.db_url") is None
    assert lab.output == "tenants.acme.db_url is not set (no runtime value, no default)\n"


def test_config_cell_merges_yaml_and_json(lab) -> None:
    """%%config takes YAML or JSON and deep-merges it."""
    lab.run("%%config\ntenants:\n  acme:\n    pool: 7\nregion: eu\n")
    lab.run('%%config tenants.globex\n{"pool": 3}\n')
    assert lab.run("%config get tenants.acme.pool") == 7
    assert lab.run("%config get tenants.globex.pool") == 3
    assert lab.run("%config get tenants.acme.db_url") == "postgres://db/acme"
    table = lab.run("%config show tenants.acme")
    assert [row[0] for row in table.rows] == ["tenants.acme.db_url", "tenants.acme.pool"]


def test_config_show_right_after_load_is_an_empty_table() -> None:
    """Nothing configured yet: `%config show` lists no keys (it used to refuse the key '')."""
    with LabShell() as lab:
        table = lab.run("%config show")
        assert (table.title, table.rows) == ("Config", [])


def test_ipython_config_magic_is_untouched(lab) -> None:
    """Every %config use that is not ours behaves exactly as without the extension."""
    lab.run("%config")
    with_lab = lab.output
    lab.run("%config InteractiveShell.ast_node_interactivity = 'last_expr'")
    lab.run("%config InteractiveShell.ast_node_interactivity")
    assert "'last_expr'" in lab.output
    lab.run("%unload_ext signalpy_lab")
    lab.run("%config")
    assert lab.output == with_lab
    lab.run("%load_ext signalpy_lab")


def test_ipython_reset_still_resets_the_namespace(lab) -> None:
    """`%reset -f` is IPython's namespace reset; bare `%reset` is a fresh kernel."""
    lab.run("x = 1")
    lab.run("%reset -f")
    assert "x" not in lab.user_ns
    lab.run("%reset")
    assert [i.name for i in lab.run("%kernel").instances()] == [
        "config", "logging", "credentials", "storage"]


def test_instantiate_before_boot_is_queued() -> None:
    """With `%reset --no-boot`, instances and config wait for `%boot`."""
    with LabShell() as lab:
        lab.run("%reset --no-boot")
        lab.run(TOUR)
        lab.run("%config set tenants.acme.db_url postgres://early/acme")
        lab.run("%instantiate tenant-db tenant-db-acme target=acme")
        assert "queued until %boot" in lab.output
        assert lab.usage_error("%invoke tenant-db.query target=acme")
        lab.run("%boot")
        r = lab.run("%invoke tenant-db.query target=acme")
        assert r["db_url"] == "postgres://early/acme"
        assert lab.run("%config get tenants.acme.db_url") == "postgres://early/acme"
        assert "(source: defaults)" in lab.output


def test_remove_offboards_a_tenant(lab) -> None:
    """`%remove` hot-removes; the next routed call lists the remaining targets."""
    lab.run("%remove tenant-db-acme")
    message = lab.usage_error("%invoke tenant-db.query target=acme")
    assert message == ("No instance serves 'tenant-db.query' for target 'acme'. "
                       "Known targets: 'globex', 'initech'.")


def test_discover_a_class_defined_in_a_cell(lab) -> None:
    """A component class written in the notebook can be discovered and instantiated."""
    lab.run(
        "from signalpy_lab.kernel import component, runnable\n"
        "@component('greeter')\n"
        "class Greeter:\n"
        "    @runnable('hello')\n"
        "    async def hello(self, params):\n"
        "        return f'hello from {self.rt.name}'\n"
    )
    lab.run("%discover Greeter")
    lab.run("%instantiate greeter")
    assert lab.run("%invoke greeter.hello") == "hello from greeter"


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%invoke tenant-db.qeury target=acme", "Did you mean 'tenant-db.query'"),
        ("%invoke tenant-db.query target=nobody", "Known targets: 'acme', 'globex', 'initech'"),
        ("%invoke tenant-db.query target=acme limit=x", "limit: Input should be a valid integer"),
        ("%invoke tenant-db.query target", "expected key=value, got 'target'"),
        ("%invoke tenant-db.query {nope", "params are not valid JSON"),
        ("%instantiate tenant-dbb x target=y", "Did you mean 'tenant-db'"),
        ("%instantiate tenant-db tenant-db-acme target=acme", "already exists"),
        ("%instantiate tenant-db tenant-db-acme2 target=acme", "already served by instance"),
        ("%remove tenant-db-acm", "Did you mean 'tenant-db-acme'"),
        ("%config set tenants..acme 1", "dotted string like 'tenants.acme.db_url'"),
        ("%config set tenants.acme.db_url", "expected KEY VALUE"),
        ("%discover NoSuchComponent", "Valid names: 'TenantDatabase'"),
        ("%why tenant-db-acme.db_ur", "Did you mean 'tenant-db-acme.db_url'"),
        ("%graph --tenant umbrela", "no instance serves 'umbrela'"),
        ("%graph --export out.png", "expected a path ending in .svg, .dot or .json"),
        ("%%config\n- just\n- a list\n", "the cell must be a mapping"),
    ],
)
def test_user_errors_are_one_line_usage_errors(lab, cell, message) -> None:
    """Each mistake is a one-line UsageError naming the problem (no traceback)."""
    error = lab.usage_error(cell)
    assert message in error
    assert "Traceback" not in lab.output


def test_usage_help_is_real(lab) -> None:
    """`%invoke?` documents the arguments (magic_arguments)."""
    doc = lab.shell.find_line_magic("invoke").__doc__
    assert "%invoke [--timeout TIMEOUT] handler [params ...]" in doc
    assert "key=value pairs or one JSON object" in doc


def test_text_views_in_a_terminal(lab) -> None:
    """Without a widget front end, %graph, %bus, %routes and %lab are readable text."""
    lab.run("%invoke tenant-db.query target=acme")
    lab.run("%config set tenants.acme.db_url postgres://new/acme")
    graph = str(lab.run("%graph --tenant acme"))
    rows = [line.split()[:6] for line in graph.splitlines()]
    assert ["○", "stale", "tenant-db-acme", "acme", "computed", "tenant-db-acme.db_url"] in rows
    assert "globex" not in graph
    routes = str(lab.run("%bus"))
    assert "tenant-db.query[acme] → tenant-db-acme.query" in routes
    lab.run("%lab")
    assert "Events (newest first)" in lab.output
    assert f"engine: {ENGINE} (" in lab.output  # which build of graph.py runs (issue 21)
    assert str(lab.run("%instances")).count("active") == 7


def test_why_on_a_computed_that_never_ran_says_so(lab) -> None:
    """Before its first read a computed has no dependencies: %why says it has not run yet."""
    explanation = lab.run("%why tenant-db-acme.db_url")
    assert explanation.verdict == ("has not run yet, so it has read nothing and has no "
                                   "dependencies yet (computeds are lazy: its first read runs it)")
    assert "it reads" not in str(explanation)


def test_why_explains_recompute_and_non_recompute(lab) -> None:
    """%why names the write, its command and the chain; and why acme did not recompute."""
    for tenant in ("acme", "globex"):
        lab.run(f"%invoke tenant-db.query target={tenant}")
    lab.run("%config set tenants.globex.db_url postgres://migrated/globex\n"
            "%invoke tenant-db.query target=globex")
    globex = lab.run("%why tenant-db-globex.db_url")
    assert globex.status == "recomputed"
    assert globex.chain == ["tenants.globex.db_url", "tenant-db-globex.db_url"]
    assert "by `%config set tenants.globex.db_url postgres://migrated/globex`" in str(globex)
    acme = lab.run("%why tenant-db-acme.db_url")
    assert acme.verdict.startswith("did NOT recompute")
    assert "none of the signals written (tenants.globex.db_url) is among its inputs" in str(acme)


def test_graph_export_formats(lab, tmp_path) -> None:
    """%graph --export writes DOT, JSON and SVG of the current graph."""
    lab.run("%invoke tenant-db.query target=acme")
    for suffix in ("dot", "json", "svg"):
        path = tmp_path / f"graph.{suffix}"
        lab.run(f"%graph --export {path}")
        assert "db_url" in path.read_text()


def test_completion_offers_names_and_targets(lab) -> None:
    """Tab completion knows factories, handlers, config keys, instances and targets."""
    from signalpy_lab.lab.completion import candidates
    session = lab.session
    assert candidates(session, "%invoke tenant-db.q") == ["tenant-db.query"]
    assert candidates(session, "%invoke tenant-db.query target=g") == ["target=globex"]
    assert candidates(session, "%instantiate tenant") == ["tenant-db"]
    assert candidates(session, "%config s") == ["set", "share", "show"]
    assert candidates(session, "%config h") == ["history"]
    assert candidates(session, "%config set tenants.ac") == ["tenants.acme",
                                                             "tenants.acme.db_url"]
    assert candidates(session, "%remove tenant-db-g") == ["tenant-db-globex"]
    assert candidates(session, "%graph --tenant i") == ["initech"]
    assert candidates(session, "%discover Tenant", lab.user_ns) == ["TenantDatabase"]
    from IPython.core.completer import provisionalcompleter

    line = "%invoke tenant-db.query target=glo"
    with provisionalcompleter():
        texts = [c.text for c in lab.shell.Completer.completions(line, len(line))]
    assert "globex" in texts


def test_unload_removes_everything(lab) -> None:
    """After %unload_ext, our magics, hooks, matcher and input transformer are gone; %config
    is IPython's."""
    shell = lab.shell
    matchers = len(shell.Completer.custom_matchers)
    transformers = list(shell.input_transformers_post)
    lab.run("%unload_ext signalpy_lab")
    assert [type(t).__name__ for t in transformers if t not in shell.input_transformers_post] \
        == ["MagicLines"]
    assert shell.find_line_magic("invoke") is None
    assert shell.find_cell_magic("config") is None
    assert type(shell.find_line_magic("config").__self__).__name__ == "ConfigMagics"
    assert len(shell.Completer.custom_matchers) == matchers - 1
    assert "kernel" not in shell.user_ns
    lab.run("%load_ext signalpy_lab")  # and a reload is clean
    assert lab.run("%kernel").state.value == "running"


def test_why_explains_a_stale_node_by_its_cause(lab) -> None:
    """Written but not yet read: stale, because of the write, and lazily waiting."""
    lab.run("%invoke tenant-db.query target=acme")
    lab.run("%config set tenants.acme.db_url postgres://new/acme")
    why = lab.run("%why tenant-db-acme.db_url")
    assert why.status == "stale"
    assert "not yet recomputed: computeds are lazy" in why.verdict
    assert "by `%config set tenants.acme.db_url postgres://new/acme`" in str(why)
    assert why.chain == ["tenants.acme.db_url", "tenant-db-acme.db_url"]


def test_each_cell_that_does_something_reactive_is_its_own_epoch(lab) -> None:
    """Onboarding is one epoch (a write nobody reads yet, an instance added), the newcomer's
    first query another (its first run belongs to the cell that read it), and a cell that
    changes nothing reactive makes none."""
    lab.run("%invoke tenant-db.query target=acme")
    lab.run("%config set tenants.acme.db_url postgres://new/acme")  # the migration cell
    model = lab.session.model
    before = model.epoch.number
    lab.run("%config set tenants.umbrella.db_url postgres://db4/umbrella\n"
            "%instantiate tenant-db tenant-db-umbrella target=umbrella")
    onboarding = model.epoch_record(before + 1)
    assert ("%config set tenants.umbrella.db_url postgres://db4/umbrella (+1 more)"
            == onboarding.label)
    assert ["tenants.umbrella.db_url"] == [w.key for w in onboarding.writes]
    assert "no readers yet" in lab.output
    lab.run("%invoke tenant-db.query target=umbrella")
    assert (before + 2, "%invoke tenant-db.query target=umbrella") == (
        model.epoch.number, model.epoch.label)
    statuses = {n["label"]: n["status"] for n in model.snapshot()["nodes"]}
    assert statuses["tenant-db-umbrella.db_url"] == "recomputed"
    assert statuses["tenant-db-acme.db_url"] == "stale"  # still waiting from the migration
    lab.run("%invoke tenant-db.query target=umbrella")  # cached: nothing recomputes
    assert before + 2 == model.epoch.number
