"""The lab's magics: drive the kernel from IPython, see what every change did.

Every magic returns synchronously, in Jupyter and in terminal IPython alike (the kernel runs
on its own loop thread, see ``runner.py``). User mistakes raise ``UsageError``: one line, no
traceback, with the valid choices. Writes made by a magic are labelled with the magic's own
line, so the event log and ``%why`` can say which command caused a cascade.

IPython already owns ``%config`` and ``%reset``. Ours handle ``%config set|get|show|unset``
and ``%reset [--no-boot]``; every other use goes, unchanged, to IPython's original
(``%reset namespace`` reaches IPython's bare ``%reset``).

A trailing ``# comment`` on a magic line is a comment, as in Python: a ``#`` after whitespace,
outside quotes (``a#b``, ``postgres://db/x#frag`` and ``"a # b"`` are values). It is removed
before the magic sees its line, and before ``{var}`` expansion (``lines.py``, which also
suggests the closest magic for a misspelled one). A mistyped flag, parameter or config key
gets the closest valid ones (``suggest.py``).
"""

from __future__ import annotations

import difflib
import importlib
import json
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import SignalpyLabError, choices
from ..kernel._engine import describe as engine_line
from ..kernel.events import caused_by
from ..kernel.metadata import meta_of
from . import text
from .as_instance import run_as
from .lines import without_comments
from .masking import MASK, is_secret_key, returned, shown
from .session import LabSession
from .suggest import check_params, near_keys, params_model, parse_args
from .why import explain

__all__ = ["CONFIG_SUBCOMMANDS", "LabMagics", "parse_assignments", "parse_value"]

CONFIG_SUBCOMMANDS = ("set", "get", "show", "unset", "history", "share")


def parse_value(raw: str) -> Any:
    """JSON when it is JSON (``3``, ``true``, ``{"a": 1}``), else the string itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_assignments(words: list[str], what: str) -> dict[str, Any]:
    """``['table=users', 'limit=5']`` -> ``{'table': 'users', 'limit': 5}``."""
    out: dict[str, Any] = {}
    for word in words:
        key, sep, raw = word.partition("=")
        if not sep or not key:
            raise UsageError(f"{what}: expected key=value, got {word!r} "
                             f"(e.g. target=acme limit=5, or one JSON object).")
        out[key] = parse_value(raw)
    return out


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our own errors into one-line UsageErrors (tracebacks are for bugs)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SignalpyLabError as exc:
            raise UsageError(str(exc)) from None
        except TimeoutError as exc:
            raise UsageError(str(exc)) from None

    return wrapper


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"Could not parse {line!r}: {exc} (unbalanced quotes?)") from None


def _has_widget_frontend(shell: Any) -> bool:
    """Jupyter (ipykernel) renders widgets; terminal IPython and scripts get text."""
    return getattr(shell, "kernel", None) is not None


@magics_class
class LabMagics(Magics):
    """``%discover``, ``%instantiate``, ``%invoke``, ``%config set`` and friends."""

    def __init__(self, shell: Any, session: LabSession,
                 ipython_config: Callable[..., Any] | None = None,
                 ipython_reset: Callable[..., Any] | None = None) -> None:
        super().__init__(shell)
        without_comments(self)  # a trailing `# comment` is not part of any magic's line
        self.session = session
        self._ipython_config = ipython_config
        self._ipython_reset = ipython_reset

    @property
    def kernel(self) -> Any:
        return self.session.kernel

    def handles(self, kind: str, name: str, line: str) -> bool:
        """Whether ``%name line`` (``%%name`` when ``kind`` is ``"cell"``) is the lab's to run:
        every magic of ours, and of ``%config`` / ``%reset`` only our uses (the rest is
        IPython's, passed on unchanged)."""
        if name not in self.magics[kind]:
            return False
        if kind == "line" and name == "config":
            return _is_ours_config(line)
        if name == "reset":
            return _is_ours_reset(line)
        return True

    def _display(self, obj: Any) -> None:
        from IPython.display import display

        display(obj)

    # -- components ------------------------------------------------------------------------

    @magic_arguments()
    @argument("names", nargs="+", help="component classes or modules: names in the "
                                       "notebook, or dotted paths like pkg.module.Class")
    @line_magic
    @_user_errors
    def discover(self, line: str) -> None:
        """Register component classes (or every component in a module) as factories."""
        args = parse_args(self.discover, line)
        found = [self._resolve_component(name) for name in args.names]
        names = self.session.discover(found)
        print(f"discovered: {', '.join(names)}")

    def _resolve_component(self, name: str) -> Any:
        obj = self.shell.user_ns.get(name)
        if obj is None:
            try:
                obj = importlib.import_module(name)
            except ImportError:
                module_name, _, attr = name.rpartition(".")
                try:
                    obj = getattr(importlib.import_module(module_name), attr) if module_name \
                        else None
                except (ImportError, AttributeError):
                    obj = None
        if obj is None:
            candidates = [k for k, v in self.shell.user_ns.items()
                          if isinstance(v, type) and meta_of(v) is not None]
            raise UsageError(f"%discover: no class or module {name!r} in the notebook or on "
                             f"the import path. {choices(name, candidates)}")
        return obj

    @magic_arguments()
    @argument("factory", help="factory (component) name")
    @argument("rest", nargs="*", help="[NAME] then key=value properties (values are JSON "
                                      "when they parse as JSON, else strings)")
    @argument("--process", action="store_true",
              help="host the instance in a worker process of its own (reached over NATS)")
    @line_magic
    @_user_errors
    def instantiate(self, line: str) -> Any:
        """Create an instance: queued before %boot, activated at once after it.

        %instantiate tenant-db tenant-db-acme target=acme
        %instantiate tenant-db tenant-db-hooli target=hooli --process   # in a worker
        """
        args = parse_args(self.instantiate, line)
        self._check_not_stopped("%instantiate")
        rest = list(args.rest)
        name = rest.pop(0) if rest and "=" not in rest[0] else None
        properties = parse_assignments(rest, "%instantiate")
        isolation = "process" if args.process else "inline"
        with caused_by(f"%instantiate {line}"):
            inst = self.session.run(self.kernel.hot_add(args.factory, name, properties,
                                                        isolation=isolation))
        when = "activated" if self.session.booted else "queued until %boot"
        where = ""
        if inst.isolation != "inline":
            where = (f", in worker pid {inst.pid}" if inst.pid else
                     "; %boot starts its worker process" if not self.session.booted else "")
            host = self.kernel.isolation_host(inst.isolation)
            sandbox = getattr(host, "sandbox_state", lambda _name: None)(inst.name)
            if sandbox:
                where += f"; sandbox: {sandbox}"
        print(f"{inst.name}: {inst.state} ({when}{where})")
        return None

    @magic_arguments()
    @argument("name", help="instance name")
    @line_magic
    @_user_errors
    def restart(self, line: str) -> Any:
        """Restart an instance: deactivate it (if active) and activate it again.

        A process-isolated instance whose worker died gets a new worker, with its config view
        as it is now; other instances never notice. Prints the new pid.
        """
        args = parse_args(self.restart, line)
        self._check_not_stopped("%restart")
        if not self.session.booted:
            raise UsageError("%restart: the kernel is not booted; %boot activates every "
                             "instance")
        known = [i.name for i in self.kernel.instances()]
        if args.name not in known:
            raise UsageError(f"%restart: no instance {args.name!r}. {choices(args.name, known)}")
        with caused_by(f"%restart {line}"):
            inst = self.session.run(self.kernel.restart(args.name))
        where = f"worker pid {inst.pid}" if inst.pid else "in this process"
        print(f"{inst.name}: {inst.state} ({where})")
        return None

    @magic_arguments()
    @line_magic
    @_user_errors
    def boot(self, line: str) -> None:
        """Boot the kernel: activate every queued instance in dependency order.

        On a running kernel it changes nothing and says what is running (so a notebook
        written instantiate-then-boot survives Run All). After %shutdown it restarts the
        kernel with the same factories, instances and config.
        """
        parse_args(self.boot, line)
        with caused_by("%boot"):
            report = self.session.boot()
        self.shell.user_ns["kernel"] = self.session.kernel
        states: dict[str, int] = {}
        for info in self.kernel.instances():
            states[info.state] = states.get(info.state, 0) + 1
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        head = {"booted": "booted", "restarted": "restarted with the same factories, "
                "instances and config", "running": "already running, nothing to boot"}
        text = f"{head[report.action]}: {report.instances} instances ({counts or 'none'})"
        if report.failed:
            text += f"; {len(report.failed)} failed: " + "; ".join(report.failed)
        if report.lost:
            text += ("; not restarted (class not found, %discover it again): "
                     + ", ".join(report.lost))
        print(text)

    @magic_arguments()
    @line_magic
    @_user_errors
    def shutdown(self, line: str) -> None:
        """Deactivate every instance in reverse dependency order (%boot restarts)."""
        parse_args(self.shutdown, line)
        if self.session.stopped:
            print("kernel already stopped: %boot restarts it, %reset starts a fresh one")
            return
        with caused_by("%shutdown"):
            count = self.session.shutdown()
        print(f"kernel stopped: {count} instances deactivated. %boot restarts it with the "
              "same factories, instances and config; %reset starts a fresh one")

    def _inline_on(self) -> bool:
        from .inline import inline_enabled

        return inline_enabled(self.shell, self.session.inline)

    def _check_not_stopped(self, magic: str) -> None:
        if self.session.stopped:
            raise UsageError(f"{magic}: the kernel is stopped; %boot restarts it (same "
                             "factories, instances and config), then try again")

    @magic_arguments()
    @argument("--no-boot", action="store_true", help="leave the new kernel unbooted")
    @line_magic
    def reset(self, line: str) -> None:
        """%reset [--no-boot]: replace the kernel with a fresh one (embedded providers).

        IPython's own namespace reset keeps working: `%reset -f`, `%reset -s`,
        `%reset in`/`out`/`dhist`/`array`, and `%reset namespace` for its bare form.
        """
        words = line.split()
        if not _is_ours_reset(line):
            if self._ipython_reset is None:
                raise UsageError("%reset: expected no argument or --no-boot")
            return self._ipython_reset("" if words == ["namespace"] else line)
        return _user_errors(self._reset_kernel)(line)

    def _reset_kernel(self, line: str) -> None:
        args = parse_args(self.reset, line)
        self.session.reset(boot=not args.no_boot)
        self.shell.user_ns["kernel"] = self.session.kernel
        print("fresh kernel" + (" (not booted: %instantiate queues, %boot starts)"
                                if args.no_boot else " booted"))

    @magic_arguments()
    @argument("name", help="instance name")
    @line_magic
    @_user_errors
    def remove(self, line: str) -> None:
        """Hot-remove an instance: deactivate it, drop its routes and reactive nodes."""
        args = parse_args(self.remove, line)
        with caused_by(f"%remove {line}"):
            self.session.run(self.kernel.hot_remove(args.name))
        print(f"removed {args.name}")

    @magic_arguments("kernel")
    @line_magic("kernel")
    def kernel_object(self, line: str) -> Any:
        """The lab's Kernel object (also in the notebook namespace as `kernel`)."""
        parse_args(self.kernel_object, line)
        return self.kernel

    # -- calls -----------------------------------------------------------------------------

    @magic_arguments()
    @argument("handler", help="exact name (tenant-db-acme.query) or routed (tenant-db.query)")
    @argument("params", nargs="*", help="key=value pairs or one JSON object")
    @argument("--timeout", type=float, default=None, help="seconds before the call is cancelled")
    @line_magic
    @_user_errors
    def invoke(self, line: str) -> Any:
        """Call a handler and return its result; shows how the call was routed.

        r = %invoke tenant-db.query target=globex table=users
        """
        args = parse_args(self.invoke, line)
        self._check_not_stopped("%invoke")
        params = self._params(args.params)
        check_params(f"%invoke {args.handler}", params_model(self.kernel, args.handler, params),
                     params)
        found = self.kernel.bus.resolve(args.handler, params)
        route = ("transport" if found is None else
                 f"target → {found[0].name}" if found[1] == "target" else "exact")
        started = time.perf_counter()
        with caused_by(f"%invoke {line}"):
            result = self.session.run(self.kernel.invoke(args.handler, params,
                                                         timeout=args.timeout))
        elapsed = (time.perf_counter() - started) * 1e3
        target = f"[{params['target']}]" if found and found[1] == "target" else ""
        print(f"{args.handler}{target} via {route} in {elapsed:.2f} ms")
        return result

    def _params(self, words: list[str]) -> dict[str, Any]:
        if not words:
            return {}
        if words[0].lstrip().startswith("{"):
            try:
                value = json.loads(" ".join(words))
            except ValueError as exc:
                raise UsageError(f"%invoke: params are not valid JSON: {exc}") from None
            if not isinstance(value, dict):
                raise UsageError("%invoke: JSON params must be an object like {\"target\": "
                                 "\"acme\"}")
            return value
        return parse_assignments(words, "%invoke")

    # -- config ------------------------------------------------------------------------------

    @line_cell_magic
    def config(self, line: str, cell: str | None = None) -> Any:
        """%config set KEY VALUE | get KEY | show [PREFIX] | unset KEY; %%config merges YAML/JSON.

        `%config show` lists every key as the host sees it; `show PREFIX` the keys under it.
        Secrets (every value at or under `apps.`) are always shown as ••••••, in every
        listing and message. `r = %config get KEY` returns the value, except for a secret
        key: then a SecretValue that displays masked (Out[], print, repr), and whose
        `.reveal()` gives the real value to code.

        Any other use (%config, %config InlineBackend.figure_format = 'svg', ...) is
        IPython's own %config, unchanged.
        """
        if cell is not None:
            return self._config_cell(line, cell)
        if not _is_ours_config(line):
            self._check_subcommand_typo(line)
            if self._ipython_config is None:
                raise UsageError("%config: expected set, get, show or unset")
            return self._ipython_config(line)
        return _user_errors(self._config_line)(line.split(maxsplit=2))

    def _config_share(self, bucket: str) -> None:
        """``%config share [BUCKET]``: this lab's config goes to a JetStream key-value bucket
        (the private server, or $SIGNALPY_LAB_NATS_URL's); ``%config share off`` stops."""
        if not self.session.booted:
            raise UsageError("%config share: the kernel is not booted; run %boot first")
        if bucket == "off":
            shared = self.session.config.shared
            if shared is None:
                print("the config is this kernel's own (not shared)")
                return
            self.session.run(shared.stop())
            print("config no longer shared: it keeps its values, and is this kernel's own")
            return
        from ..remote.shared_config import BUCKET, share

        shared = self.session.run(share(self.kernel, bucket or BUCKET))
        print(f"config shared through bucket {shared.bucket!r} on {shared.transport.url} "
              f"(revision {shared.seen}): every kernel sharing it sees every write")

    def _config_history(self, key: str) -> text.Table:
        """``%config history KEY``: the shared config's kept revisions of KEY."""
        entries = self.session.config.history(key)
        rows = [(e.revision, "(deleted)" if e.deleted else shown(key, e.value), e.by or "",
                 e.command or "",
                 time.strftime("%H:%M:%S", time.localtime(e.when)) if e.when else "")
                for e in entries]
        return text.Table(["revision", "value", "by", "command", "at"], rows,
                          title=f"History of {key} (shared config)",
                          footer=_masked_note([key]))

    def _check_subcommand_typo(self, line: str) -> None:
        """``%config sett ...``: IPython's %config would refuse it too, less helpfully."""
        words = line.split()
        if not words or "=" in line or "." in words[0]:
            return  # IPython's: `%config`, `%config Class.trait`, `... = value`
        if words[0].lower() in {type(c).__name__.lower() for c in self.shell.configurables}:
            return  # `%config InlineBackend`: IPython's help for that class
        if difflib.get_close_matches(words[0], CONFIG_SUBCOMMANDS, n=1, cutoff=0.6):
            raise UsageError(f"%config: no subcommand {words[0]!r}. "
                             f"{choices(words[0], CONFIG_SUBCOMMANDS, noun='subcommands')} "
                             f"(IPython's own: %config Class.trait = value)")

    def _refuse_near_key(self, magic: str, key: str) -> None:
        """A key set nowhere, one typo away from one that is set: a mistake, say which."""
        near = near_keys(key, self.session.config.keys())
        if near:
            raise UsageError(f"{magic}: {key!r} is not set. "
                             f"Did you mean {' or '.join(repr(k) for k in near)}?")

    def _config_line(self, words: list[str]) -> Any:
        command, rest = words[0], words[1:]
        session = self.session
        if command == "show":
            return self._config_show(rest[0] if rest else "")
        if command == "share":
            return self._config_share(rest[0] if rest else "")
        if not rest:
            raise UsageError(f"%config {command}: expected a key like tenants.acme.db_url")
        key = rest[0]
        if command == "set":
            if len(rest) < 2:
                raise UsageError("%config set: expected KEY VALUE, e.g. "
                                 "%config set tenants.acme.db_url postgres://db9/acme")
            value = parse_value(rest[1])
            stale: list[str] = []
            unread: list[int] = []

            def heard(event: Any) -> None:
                if event.kind == "signal.set":
                    stale.extend(event.stale_labels)
                elif event.kind == "write.unread" and event.label == key:
                    unread.append(event.readers)

            unsubscribe = self.kernel.events.subscribe(heard)
            try:
                with caused_by(f"%config set {key} {rest[1]}"):
                    session.set_config(key, value)
            finally:
                unsubscribe()
            where = ("runtime" if session.booted else
                     "pending: applied when %boot restarts the kernel" if session.stopped else
                     "pending: becomes a default at %boot")
            note = (f"; stale now: {', '.join(sorted(stale))}" if stale else
                    "; no readers yet, nothing recomputes" if unread == [0] else
                    "; equal value, nothing changed" if unread else "")
            print(f"{key} = {shown(key, value)} ({where}){note}")
            return None
        if not session.booted:
            raise UsageError(f"%config {command}: the kernel is not booted; run %boot first")
        if command == "history":
            return self._config_history(key)
        if command == "get":
            explained = session.config.explain(key)
            if explained.source is None:
                self._refuse_near_key("%config get", key)
                print(f"{key} is not set (no runtime value, no default)")
                return None
            print(f"{key} = {shown(key, explained.value)} "
                  f"(source: {explained.source or 'unset'})")
            return returned(key, explained.value)
        removed = session.config.unset(key)
        if not removed and session.config.explain(key).source is None:
            self._refuse_near_key("%config unset", key)
        print(f"{key}: " + ("runtime value removed" if removed else "no runtime value to remove"))
        return None

    def _config_show(self, prefix: str) -> text.Table:
        session = self.session
        under = f" under {prefix}" if prefix else ""
        if not session.booted:
            pending = "pending (runtime at %boot)" if session.stopped else \
                "pending (defaults at boot)"
            stopped = session.stopped_config() if session.stopped else None
            rows = [] if stopped is None else [
                (k, shown(k, stopped.peek(k)), stopped.source(k) or "")
                for k in stopped.keys(prefix)]
            rows += [(k, shown(k, v), pending) for k, v in _leaves(session.pending_config, "")
                     if not prefix or k == prefix or k.startswith(prefix + ".")]
            title = "Config (stopped: %boot restores it)" if session.stopped else \
                "Config (not booted)"
            return text.Table(["key", "value", "source"], rows, title=title + under,
                              footer=_masked_note(r[0] for r in rows))
        config = session.config
        rows = [(k, shown(k, config.peek(k)), config.source(k) or "")
                for k in config.keys(prefix)]
        if prefix and not rows:
            self._refuse_near_key("%config show", prefix)
        shared = config.shared
        sharing = "" if shared is None else \
            f" (shared: bucket {shared.bucket!r}, {shared.state}, revision {shared.applied})"
        return text.Table(["key", "value", "source"], rows, title=f"Config{sharing}{under}",
                          footer=_masked_note(r[0] for r in rows))

    @_user_errors
    def _config_cell(self, line: str, cell: str) -> None:
        values = _load_mapping(cell)
        prefix = line.strip()
        with caused_by(f"%%config {prefix}".rstrip()):
            count = self.session.merge_config(values, prefix)
        print(f"merged {count} key(s)" + (f" under {prefix}" if prefix else ""))

    # -- looking at things -------------------------------------------------------------------

    @magic_arguments()
    @line_magic
    @_user_errors
    def instances(self, line: str) -> text.Table:
        """Every instance: factory, target, state, isolation, worker pid and transport state,
        handlers, error; a footer line per transport (NATS) says where it stands."""
        parse_args(self.instances, line)
        return text.instances_table(self.kernel.instances(), self.kernel.transports())

    @magic_arguments()
    @line_magic
    @_user_errors
    def factories(self, line: str) -> text.Table:
        """Every discovered factory: provides, runnables, computeds, depends, instances."""
        parse_args(self.factories, line)
        return text.factories_table(self.kernel.factories())

    @magic_arguments()
    @line_magic
    @_user_errors
    def routes(self, line: str) -> text.Table:
        """One row per tenant route: route[target] → instance handler, with call stats."""
        parse_args(self.routes, line)
        return text.routes_table(self.session.model.routes())

    @magic_arguments()
    @argument("--tenant", default=None, help="only this tenant's nodes (and what they read)")
    @argument("--instance", default=None, help="only this instance's nodes")
    @argument("--providers", action="store_true", help="also show provider internals")
    @argument("--text", action="store_true", help="a text table even in Jupyter")
    @argument("--export", default=None, metavar="PATH",
              help="write the current graph to PATH (.svg, .dot or .json; JSON has every "
                   "kept epoch)")
    @argument("--epoch", type=int, default=None, metavar="N",
              help="show epoch N as it was (its statuses and values then), not the newest")
    @line_magic
    @_user_errors
    def graph(self, line: str) -> Any:
        """The reactive dependency graph; live widget in Jupyter, text elsewhere."""
        args = parse_args(self.graph, line)
        self._check_filter(args.tenant, args.instance)
        self.session.settle_relays()
        self._check_epoch("%graph", args.epoch)
        if args.export:
            return self._export(args)
        if _has_widget_frontend(self.shell) and not args.text:
            from .widgets import GraphWidget

            return GraphWidget(self.session.model, tenant=args.tenant, instance=args.instance,
                               include_providers=args.providers, epoch=args.epoch)
        snapshot = self.session.model.snapshot(tenant=args.tenant, instance=args.instance,
                                               include_providers=args.providers,
                                               epoch=args.epoch)
        return text.graph_table(snapshot)

    def _check_epoch(self, magic: str, epoch: int | None) -> None:
        if epoch is not None:
            try:
                self.session.model.epoch_record(epoch)
            except LookupError as exc:
                raise UsageError(f"{magic} --epoch: {exc}") from None

    def _check_filter(self, tenant: str | None, instance: str | None) -> None:
        if tenant is not None:
            known = {i.target for i in self.kernel.instances() if i.target}
            if tenant not in known:
                raise UsageError(f"--tenant: no instance serves {tenant!r}. "
                                 f"{choices(tenant, known)}")
        if instance is not None:
            known = {i.name for i in self.kernel.instances()}
            if instance not in known:
                raise UsageError(f"--instance: no instance {instance!r}. "
                                 f"{choices(instance, known)}")

    def _export(self, args: Any) -> str:
        from pathlib import Path

        from .render.dot import to_dot
        from .render.svg import render_svg

        path = Path(args.export)
        snapshot = self.session.model.snapshot(tenant=args.tenant, instance=args.instance,
                                               include_providers=args.providers,
                                               epoch=args.epoch, include_epochs=True)
        suffix = path.suffix.lower()
        if suffix == ".json":
            path.write_text(json.dumps(snapshot, indent=2, default=str))
        elif suffix in (".dot", ".gv"):
            path.write_text(to_dot(snapshot).source)
        elif suffix == ".svg":
            path.write_text(render_svg(to_dot(snapshot), embed_style=True))
        else:
            raise UsageError(f"--export: expected a path ending in .svg, .dot or .json, "
                             f"got {str(path)!r}")
        print(f"wrote {path}")
        return str(path)

    @magic_arguments()
    @argument("--text", action="store_true", help="a text table even in Jupyter")
    @line_magic
    @_user_errors
    def bus(self, line: str) -> Any:
        """The per-tenant bus routes, live: calls, errors, last latency and result."""
        args = parse_args(self.bus, line)
        if _has_widget_frontend(self.shell) and not args.text:
            from .widgets import BusTable

            return BusTable(self.session.model)
        return text.routes_table(self.session.model.routes())

    @magic_arguments()
    @argument("node", help="INSTANCE.COMPUTED, e.g. tenant-db-acme.db_url")
    @argument("--epoch", type=int, default=None, metavar="N",
              help="explain what it did in epoch N (default: the newest)")
    @line_magic
    @_user_errors
    def why(self, line: str) -> Any:
        """Why did INSTANCE.COMPUTED (not) recompute: the recorded cause and chain."""
        args = parse_args(self.why, line)
        self.session.settle_relays()
        self._check_epoch("%why", args.epoch)
        try:
            explanation = explain(self.session.model, args.node, epoch=args.epoch)
        except LookupError as exc:
            down = self._down_instance(args.node)
            if down is not None:
                raise UsageError(f"%why: {args.node!r} belongs to instance {down.name!r}, "
                                 f"which is {down.state}: {down.error}") from None
            raise UsageError(f"%why: {exc}") from None
        return explanation

    def _down_instance(self, label: str) -> Any:
        """The not-active instance whose name prefixes ``label`` (its nodes are gone)."""
        for info in self.kernel.instances():
            if label.startswith(f"{info.name}.") and info.state != "active":
                return info
        return None

    @magic_arguments()
    @argument("--text", action="store_true", help="text tables even in Jupyter")
    @argument("--tenant", default=None, help="focus the graph on one tenant")
    @argument("--inline", choices=("on", "off", "auto"), default=None,
              help="after %%config set, %%invoke, %%instantiate, %%remove, show that epoch's "
                   "small picture under the cell (auto, the default: on in Jupyter, off in "
                   "a terminal); changes the setting and shows nothing else")
    @argument("--record", choices=("on", "off"), default=None,
              help="off: pause the lab's recording, so the kernel runs at its unobserved "
                   "speed (a bulk load); on: record again, from a new epoch")
    @argument("--sidecar", action="store_true",
              help="open the panel beside the notebook (JupyterLab, with the sidecar "
                   "package), so it stays in view while you step through the cells")
    @line_magic
    @_user_errors
    def lab(self, line: str) -> Any:
        """Graph, bus table and event log together (live in Jupyter).

        %lab --sidecar opens it beside the notebook in JupyterLab, so it stays in view.
        """
        args = parse_args(self.lab, line)
        if args.record is not None:
            model = self.session.model
            if args.record == "off":
                model.pause()
                print("lab recording paused: nothing is recorded until %lab --record on")
            else:
                was_paused = model.paused
                model.resume()
                print(f"lab recording on (epoch {model.epoch.number})" if was_paused
                      else "lab recording was already on")
            return None
        if args.inline is not None:
            self.session.inline = args.inline
            print(f"inline epoch pictures: {args.inline}"
                  + (f" (now {'on' if self._inline_on() else 'off'} here)"
                     if args.inline == "auto" else ""))
            return None
        self._check_filter(args.tenant, None)
        self.session.settle_relays()
        if _has_widget_frontend(self.shell) and not args.text:
            from .widgets import LabPanel

            panel = LabPanel(self.session.model, tenant=args.tenant)
            if args.sidecar:
                from .sidecar import show_in_sidecar

                return show_in_sidecar(self.session, panel)
            return panel
        if args.sidecar:
            print("(%lab --sidecar needs a notebook front end; here are the tables)")
        model = self.session.model
        print(engine_line())
        print(text.graph_table(model.snapshot(tenant=args.tenant)))
        print()
        print(text.routes_table(model.routes()))
        print()
        print(text.log_table(model.recent(15, tenant=args.tenant)))
        return None

    @magic_arguments()
    @argument("--limit", type=int, default=30, help="how many entries")
    @argument("--tenant", default=None, help="only this tenant's events")
    @line_magic
    @_user_errors
    def events(self, line: str) -> text.Table:
        """The recent reactive and bus events, newest first, with their command."""
        args = parse_args(self.events, line)
        self.session.settle_relays()
        return text.log_table(self.session.model.recent(args.limit, tenant=args.tenant))

    @cell_magic("as")
    def as_instance(self, line: str, cell: str) -> Any:
        """Run the cell as INSTANCE's own code: ``rt`` and ``self`` are its, nothing else is.

        %%as tenant-db-acme
        rt.config.get("tenants.globex.db_url")   # refused, as in acme's own code

        The notebook's variables (``kernel`` too) are not in the cell's namespace; top-level
        ``await`` works; the last line's value is the result. A refusal is one line naming
        the error (``TenantIsolationError: ...``); a bug in the cell shows its traceback with
        the cell's line numbers. In-process ``%%as`` is a scope for learning, not a sandbox;
        on a process-isolated instance the cell runs inside its worker, under its sandbox,
        so an OS refusal (``PermissionError``) shows as one line too.
        """
        name = line.strip()
        known = [i.name for i in self.kernel.instances()]
        if not name or " " in name:
            raise UsageError(f"%%as takes one instance name, like %%as tenant-db-acme; got "
                             f"{line.strip()!r}. {choices(name, known)}")
        if name not in known:
            raise UsageError(f"%%as: no instance {name!r}. {choices(name, known)}")
        inst = self.kernel.instance(name)
        if inst.isolation == "process":
            if inst.state.value != "active" or not inst.pid:
                raise UsageError(f"%%as {name}: it is {inst.state}; only an active instance "
                                 f"has a worker to run the cell in (%restart {name}?).")
        elif inst.isolation != "inline":
            raise UsageError(f"%%as {name}: it runs under isolation {inst.isolation!r}; "
                             f"%%as runs cells in process or in a worker process.")
        elif inst.obj is None:
            raise UsageError(f"%%as {name}: it is {inst.state}; only an active instance has "
                             f"code to run as (%restart {name}?).")
        try:
            return run_as(self.session, name, cell, shell=self.shell,
                          header=f"%%as {line.strip()}")
        except SyntaxError as exc:
            message = f"SyntaxError: {exc.msg} (line {(exc.lineno or 0) + 1} of the cell)"
            exc._render_traceback_ = lambda: [message]  # type: ignore[attr-defined]
            raise exc.with_traceback(None) from None


def _is_ours_config(line: str) -> bool:
    """``%config set|get|show|unset ...`` is ours; any other ``%config`` is IPython's."""
    words = line.split(maxsplit=1)
    return bool(words) and words[0] in CONFIG_SUBCOMMANDS


def _is_ours_reset(line: str) -> bool:
    """Bare ``%reset`` and ``%reset --flags`` are ours (an unknown flag gets a did-you-mean);
    ``-f``, ``-s``, ``--aggressive``, ``in``, ``namespace`` ... are IPython's."""
    return all(w.startswith("--") and w != "--aggressive" for w in line.split())


def _masked_note(keys: Iterable[str]) -> str | None:
    """The footer of a config listing that hides secrets."""
    if any(is_secret_key(k) for k in keys):
        return f"values under apps. are secrets, shown as {MASK}"
    return None


def _leaves(tree: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and value:
            out.extend(_leaves(value, path))
        else:
            out.append((path, value))
    return out


def _load_mapping(body: str) -> dict[str, Any]:
    """Parse a %%config cell: JSON, else YAML; it must be a mapping."""
    try:
        value = json.loads(body)
    except ValueError:
        import yaml

        try:
            value = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"%%config: the cell is neither JSON nor YAML ({first})") from None
    if not isinstance(value, dict):
        raise UsageError("%%config: the cell must be a mapping, e.g.\n"
                         "tenants:\n  acme:\n    db_url: postgres://db1/acme")
    return value
