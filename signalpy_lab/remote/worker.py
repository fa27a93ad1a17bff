"""The worker: one process-isolated instance, in a kernel of its own, served over NATS.

Forked by ``ProcessHost``'s fork server (``zygote.py``), or started as ``python -m
signalpy_lab.remote.worker`` where there is none; either way ``run()``: it reads one JSON line
on stdin (the bootstrap), **confines itself** (``sandbox.confine``: while it has one thread,
before the tenant's class is loaded), prints one JSON line on stdout when it serves
(``{"ready": true, "pid": ..., "sandbox": {...}}``) or why it could not, and then lives until
the host says stop, its stdin closes (the host process is gone) or it is killed (it also gets
SIGKILL when its parent dies).

Bootstrap (every secret in it travels over this pipe only: never a file, argv or the
environment)::

    {"servers": ["nats://127.0.0.1:4222", ...], "seed": "SU...",   # its NKey seed; or
     "user": ..., "password": ...,        # the kernel's login, on a server the host can't configure
     "node": "w-tenant-db-hooli", "inbox_prefix": "_INBOX_w-tenant-db-hooli",
     "name": "tenant-db-hooli", "properties": {"target": "hooli"},
     "factory": {"module": "pkg.mod", "qualname": "TenantDatabase",
                 "origin": {"name": "pkg", "file": "/src/pkg/__init__.py"}}
                | {"pickle": "<base64>"},
     "config": {<the instance's config view: shared keys, its tenant section, its apps.<name>>},
     "config_rev": 0, "config_wait": 2.0, "timeout": 10.0, "host_owned": ["tenants.*.quota"],
     "storage_root": "/path" | null, "exec": true,
     "sandbox": {"storage": "/path/tenant-db-hooli" | null, "temp_dir": "/tmp/.../tmp",
                 "ports": [4222], "read": ["/src/pkg"]}}

``sandbox`` is what ``Confinement.for_worker`` gets: the tenant's own storage prefix and a
private temp dir (both created by the host; the worker's cwd and ``HOME`` become the temp
dir), the NATS servers' ports, and the folders of a class shipped by module path that lie
outside Python's own (``read``: its top-level package's folder, which ``origin`` then loads
by location, so the folder that holds it need not be listable). A kernel with Landlock that
refuses the ruleset stops the worker (``SandboxError``); a kernel without Landlock runs it
and the ready message says ``none (why)``.

``exec`` (true only when the host configured this worker's own NATS user, so nobody else may
publish on its control subject) lets the host run a ``%%as`` cell inside the worker: a
request on ``spl.v1.control.<node>`` (``wire.py``), answered with the cell's output, value or
error (``kernel/as_code.py`` says how a refusal differs from a bug).

What the worker receives is exactly the instance's own view, at config revision
``config_rev``; later changes to it arrive on ``spl.v1.config.<node>`` as ``{"rev": n, "set":
{key: value}, "unset": [key], "command": ...}``, each bringing it to the next revision, applied
in one batch so each changed key re-runs its readers once. A call carries the revision the
host had sent when it was made (``config_rev``); the worker runs it once it has applied that
revision, waiting ``config_wait`` seconds at most, and otherwise refuses it with
``StaleConfigError`` (``ConfigSync``; the protocol is in ``wire.py``). Its kernel's events
are relayed on ``spl.v1.events.<node>`` every ``RELAY_SECONDS``, with the instance's graph
snapshot, so the host's lab draws the instance like any other. The host believes none
of their owners, tenants, ids or foreign labels: it stamps them with this worker's own
(``relay.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

import pydantic_core

from ..errors import StaleConfigError, WorkerError
from ..kernel import Kernel, batch, caused_by
from ..kernel.as_code import (
    cell_frames,
    compile_cell,
    execute_cell,
    is_refusal,
    namespace_for,
    new_filename,
    remember_source,
)
from ..kernel.events import Event
from ..providers import ConfigProvider, CredentialProvider, LoggingProvider, StorageProvider
from . import wire
from .sandbox import Confinement, SandboxReport, confine
from .transport import NatsTransport

__all__ = ["HOST_CHANGE", "PROVIDERS", "RELAY_SECONDS", "ConfigSync", "load_class", "main",
           "run", "run_cell"]

#: How often the worker sends its buffered events (and graph) to the host.
RELAY_SECONDS = 0.05
#: The providers every worker boots: the host shows their nodes as ``<name>@w-<instance>``
#: (``relay.WORKER_PROVIDERS``), and any other owner a relay names as the instance itself.
PROVIDERS = (ConfigProvider, LoggingProvider, CredentialProvider, StorageProvider)
#: The command a config change from the host runs under when the host named none.
HOST_CHANGE = "config change (host)"


def load_class(ref: dict[str, Any]) -> type:
    """The component class a bootstrap names: imported by module path, or unpickled by value.

    ``origin`` names the file of the module's top-level package (or module): it is loaded
    from there, so a confined worker needs only that package's folder, not the right to list
    the folder that holds it (``sys.path`` lookups list their folder).
    """
    origin = ref.get("origin")
    if isinstance(origin, dict) and origin.get("name") not in sys.modules:
        _load_top(str(origin["name"]), str(origin["file"]))
    if "pickle" in ref:  # its own module's objects may come by reference: origin first
        import cloudpickle

        return cloudpickle.loads(base64.b64decode(ref["pickle"]))  # type: ignore[no-any-return]
    target: Any = importlib.import_module(ref["module"])
    for part in ref["qualname"].split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def _load_top(name: str, file: str) -> None:
    """Import top-level package or module ``name`` from ``file`` (its ``__init__.py``)."""
    package = os.path.basename(file) == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, file, submodule_search_locations=[os.path.dirname(file)] if package else None)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name!r} from {file!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def _event_dict(event: Event) -> dict[str, Any]:
    return event.to_dict()


class ConfigSync:
    """The worker's copy of its host's config view, at a revision (``wire.py``).

    ``receive`` applies the host's messages in revision order: a message that does not apply
    on this revision (its ``base``, else its ``rev`` - 1) means one was lost, so it is not
    applied (its changes are relative to the lost one) and the worker asks for the whole view
    (``{"resync": have}`` on its events subject);
    a whole view (``"full": true``) replaces what the host had sent before. ``gate`` runs
    before each call the worker serves and waits, bounded, for the call's revision.
    """

    def __init__(self, config: Any, name: str, revision: int, view: dict[str, Any],
                 wait: float, ask: Any) -> None:
        self.config = config
        self.name = name
        self.revision = revision
        self.wait = wait
        self._host = wire.leaves(view)  # what the host sent (not what the worker wrote itself)
        self._ask = ask  # ask(have): request the whole view
        self._asked_at = -1e9
        self._changed = asyncio.Event()
        #: The host's shared-config revision this view is at (``wire.py``, "Shared config"),
        #: and how to ask the host for a later one.
        self.kv = 0
        self.ask_kv: Any = None

    def receive(self, change: dict[str, Any]) -> None:
        kv = change.get("kv")
        if isinstance(kv, int) and "rev" not in change:  # the host applied the bucket up to kv
            if kv > self.kv:
                self.kv = kv
                self._changed.set()
                self._changed = asyncio.Event()
            return
        revision = change.get("rev")
        full = bool(change.get("full"))
        if not isinstance(revision, int):
            revision = self.revision + 1  # an old host's message: in order, as before
        if revision < self.revision or (revision == self.revision and not full):
            return  # already applied, or brought by a whole view
        base = change.get("base", revision - 1)  # several changes merged: the first's base
        if base != self.revision and not full:
            self.ask()  # one or more lost on the way: these changes are relative to them
            return
        sets: dict[str, Any] = change.get("set") or {}
        unsets = [k for k in self._host if k not in sets] if full else \
            list(change.get("unset") or ())
        with caused_by(change.get("command") or HOST_CHANGE), batch():
            for key in unsets:  # first: a key that became a section is unset, then set below
                self.config.unset(key)
                self._host.pop(key, None)
            for key, value in sets.items():
                if not full or self.config.peek(key, _MISSING) != value:
                    self.config.set(key, value)
                self._host[key] = value
        self.revision = revision
        if isinstance(kv, int):
            self.kv = max(self.kv, kv)
        self._changed.set()
        self._changed = asyncio.Event()

    def ask(self) -> None:
        """Ask the host for the whole view (at most once per wait, while one may be coming)."""
        now = time.monotonic()
        if now - self._asked_at >= self.wait:
            self._asked_at = now
            self._ask(self.revision)

    def gate(self, request: dict[str, Any], handler: str) -> Any:
        """``None`` when the call's revision is applied; else an awaitable that waits for it."""
        needed = request.get("config_rev")
        shared = request.get("kv_rev")
        if isinstance(shared, int) and shared > self.kv:
            return self._until_kv(shared, handler, needed)
        if not isinstance(needed, int) or needed <= self.revision:
            return None
        return self._until(needed, handler)

    async def _until_kv(self, shared: int, handler: str, needed: Any) -> None:
        """The call was made after shared-config revision ``shared``: the host brings this
        view there (it may owe it a change), then the view's own revision is waited for."""
        if self.ask_kv is not None:
            self.ask_kv(shared)
        deadline = time.monotonic() + self.wait
        while self.kv < shared:
            left = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._changed.wait(), left if left > 0 else 0)
            except TimeoutError:
                if self.kv >= shared:
                    break
                raise StaleConfigError(
                    f"{handler} was not run: the call was made after shared config revision "
                    f"{shared} and {self.name!r}'s worker has only {self.kv} after "
                    f"{self.wait:g}s (its host is slow to apply the bucket, or a message was "
                    f"lost)") from None
        if isinstance(needed, int) and needed > self.revision:
            await self._until(needed, handler)

    async def _until(self, needed: int, handler: str) -> None:
        deadline = time.monotonic() + self.wait
        while self.revision < needed:
            left = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._changed.wait(), left if left > 0 else 0)
            except TimeoutError:
                if self.revision >= needed:
                    return
                self.ask()
                raise StaleConfigError(
                    f"{handler} was not run: the call was made at config revision {needed} of "
                    f"{self.name!r}'s view and its worker has only revision {self.revision} "
                    f"after {self.wait:g}s (a config message was lost or is late); the worker "
                    f"asked the host for its whole view again, so a retry sees the host's writes."
                ) from None


_MISSING: Any = object()


async def _serve(boot: dict[str, Any], report: SandboxReport | None) -> int:
    cls = load_class(boot["factory"])
    node, name = boot["node"], boot["name"]
    kernel = Kernel(node)
    kernel.discover(list(PROVIDERS))
    if boot.get("storage_root"):
        kernel.instantiate("storage", properties={"root": boot["storage_root"]})
    if boot.get("host_owned") is not None:  # the host's write policy, enforced here too
        kernel.instantiate("config", properties={"host_owned": boot["host_owned"]})
    await kernel.boot()
    config = kernel.registry.require("IConfig")
    if boot.get("config"):
        config.merge(boot["config"])  # runtime layer: a later unset removes a key for good
    pending_tasks: set[asyncio.Task[Any]] = set()
    kernel.discover([cls])
    if boot.get("login_follows"):  # the host adds our NATS user meanwhile; it says when
        told = sys.stdin.readline()  # the same reader as the bootstrap's: it buffers
        if told != wire.LOGIN_READY.decode():
            raise WorkerError("the host did not confirm this worker's NATS login "
                              f"(read {told[:20]!r} on stdin)")
    transport = await NatsTransport(
        kernel, boot["servers"], user=boot.get("user"), password=boot.get("password"),
        nkeys_seed=boot.pop("seed", None), node=node, announce=False,
        inbox_prefix=boot.get("inbox_prefix"), timeout=float(boot.get("timeout", 10.0))).start()
    boot.pop("password", None)  # the transport keeps what it needs to reconnect
    nc = transport._nc
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def ask_resync(have: int) -> None:
        task = asyncio.ensure_future(nc.publish(wire.events_subject(node),
                                                wire.encode({"resync": have})))
        pending_tasks.add(task)
        task.add_done_callback(pending_tasks.discard)

    sync = ConfigSync(config, name, int(boot.get("config_rev") or 0), boot.get("config") or {},
                      float(boot.get("config_wait", 2.0)), ask_resync)
    sync.kv = int(boot.get("kv_rev") or 0)

    def ask_kv(wanted: int) -> None:
        task = asyncio.ensure_future(nc.publish(wire.events_subject(node),
                                                wire.encode({"kv_wait": wanted})))
        pending_tasks.add(task)
        task.add_done_callback(pending_tasks.discard)

    sync.ask_kv = ask_kv
    transport.before_serve = sync.gate

    async def on_config(msg: Any) -> None:
        sync.receive(wire.decode(msg.data))

    async def on_control(msg: Any) -> None:
        request = wire.decode(msg.data)
        if request.get("op") == "stop":
            stopping.set()
        elif request.get("op") == "graph" and msg.reply:
            await msg.respond(wire.encode({"graph": kernel.graph(instance=name).to_dict()}))
        elif request.get("op") == "exec" and msg.reply:
            # A task: the cell may await calls whose answers this callback's queue delivers.
            task = asyncio.ensure_future(answer_cell(msg, request))
            pending_tasks.add(task)
            task.add_done_callback(pending_tasks.discard)

    async def answer_cell(msg: Any, request: dict[str, Any]) -> None:
        if not boot.get("exec"):
            result: dict[str, Any] = {"ok": False, "error": {
                "type": "WorkerError", "refusal": True, "message":
                f"{name!r} runs no cells: its worker shares the kernel's NATS login (a server "
                f"this host does not configure), so others could send them too"}}
        else:
            result = await run_cell(kernel, name, str(request.get("cell", "")),
                                    first_line=int(request.get("first_line") or 1),
                                    header=str(request.get("header") or ""),
                                    timeout=float(request.get("timeout") or 10.0))
        with contextlib.suppress(Exception):
            await msg.respond(wire.encode(result))

    await nc.subscribe(wire.config_subject(node), cb=on_config)
    await nc.subscribe(wire.control_subject(node), cb=on_control)
    await transport.settle()  # the host calls as soon as it reads "ready"
    pending: list[Event] = []

    # Without calls: the host's bus records each call itself, and the worker's bus then
    # builds no HandlerInvoked per call for nobody.
    kernel.events.subscribe(pending.append, calls=False)

    async def relay() -> None:
        subject = wire.events_subject(node)
        while not stopping.is_set():
            await asyncio.sleep(RELAY_SECONDS)
            if not pending or not nc.is_connected:
                continue
            batch_, pending[:] = list(pending), []
            try:
                await nc.publish(subject, wire.encode({
                    "events": [_event_dict(e) for e in batch_],
                    "graph": kernel.graph(instance=name).to_dict()}))
            except Exception as exc:  # a relay must never take the worker down
                print(f"worker {node}: relay failed: {exc}", file=sys.stderr)

    def watch_stdin() -> None:  # the host's end of the pipe closes when the host dies
        sys.stdin.read()
        loop.call_soon_threadsafe(stopping.set)

    try:
        await kernel.hot_add(cls, name, boot.get("properties") or {})
    except Exception as exc:
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        await transport.stop()
        return 1
    relay_task = asyncio.ensure_future(relay())
    threading.Thread(target=watch_stdin, daemon=True, name="spl-worker-stdin").start()
    print(json.dumps({"ready": True, "pid": os.getpid(),
                      "sandbox": report.to_dict() if report is not None else None}), flush=True)
    await stopping.wait()
    relay_task.cancel()
    await kernel.shutdown()
    await transport.stop()
    return 0


#: A cell's output and its value's repr are cut at this many characters.
CELL_TEXT = 64_000


async def run_cell(kernel: Kernel, name: str, cell: str, *, first_line: int = 1,
                   header: str = "", timeout: float = 10.0) -> dict[str, Any]:
    """Run ``cell`` as instance ``name``'s code in this worker: what the host gets back.

    ``{"ok": true, "value": <JSON or null>, "json": bool, "repr": str, "stdout": str,
    "stderr": str}``, or ``{"ok": false, "stdout": ..., "stderr": ..., "error": {"type",
    "message", "line", "refusal": bool, "traceback": [lines]}}``: a refusal's ``line`` is
    what the cell shows; a bug's ``traceback`` keeps only the cell's frames, with the
    notebook's line numbers (``first_line``) and the cell's source quoted (``header``
    is its line 1, the ``%%as`` line).
    """
    component = kernel.component(name)
    filename = new_filename(name)
    remember_source(filename, f"{header}\n{cell}" if header else cell)
    out, err = io.StringIO(), io.StringIO()
    result: dict[str, Any]
    try:
        body, tail = compile_cell(cell, filename, first_line=first_line)
        namespace = namespace_for(name, component)
        with caused_by(f"%%as {name}"), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            value = await asyncio.wait_for(execute_cell(body, tail, namespace), timeout)
        try:
            jsonable: Any = pydantic_core.to_jsonable_python(value)
            is_json = jsonable == value or value is None
        except Exception:
            jsonable, is_json = None, False
        result = {"ok": True, "value": jsonable if is_json else None, "json": is_json,
                  "repr": repr(value)[:CELL_TEXT]}
    except TimeoutError:
        result = {"ok": False, "error": {
            "type": "InvokeTimeoutError", "refusal": True,
            "message": f"the cell did not finish within {timeout:g}s in {name!r}'s worker; "
                       f"it was cancelled there"}}
    except SyntaxError as exc:
        result = {"ok": False, "error": {
            "type": "SyntaxError", "refusal": True,
            "message": f"{exc.msg} (line {exc.lineno} of the cell)"}}
    except Exception as exc:
        tb = cell_frames(exc.__traceback__, filename) or exc.__traceback__
        result = {"ok": False, "error": {
            "type": type(exc).__name__, "message": str(exc), "refusal": is_refusal(exc),
            "traceback": traceback.format_exception(type(exc), exc, tb)}}
    if not result["ok"]:
        error = result["error"]
        error["line"] = f"{error['type']}: {error['message']}".splitlines()[0]
        error.setdefault("traceback", [error["line"]])
    result["stdout"], result["stderr"] = out.getvalue()[:CELL_TEXT], err.getvalue()[:CELL_TEXT]
    return result


def _confine(boot: dict[str, Any]) -> SandboxReport | None:
    """Confine this process as the bootstrap's ``sandbox`` says (module docstring)."""
    spec = boot.get("sandbox")
    if not isinstance(spec, dict):
        return None
    temp = spec["temp_dir"]
    os.chdir(temp)  # relative paths land in its own temp dir, never the host's folder
    report = confine(Confinement.for_worker(
        storage=spec.get("storage"), temp_dir=temp, connect_ports=spec.get("ports") or (),
        extra_read=spec.get("read") or ()))
    os.environ["HOME"] = temp
    return report


def run() -> int:
    """Read the bootstrap from stdin, confine this process, serve until told to stop."""
    line = sys.stdin.readline()
    if not line:
        print(json.dumps({"ready": False, "error": "no bootstrap on stdin"}), flush=True)
        return 2
    try:
        boot = json.loads(line)
        del line  # the NKey seed is in it
        report = _confine(boot)  # one thread, no tenant code loaded yet
        return asyncio.run(_serve(boot, report))
    except Exception as exc:
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1


def main() -> int:
    """``python -m signalpy_lab.remote.worker``: a worker started as a fresh interpreter."""
    return run()


if __name__ == "__main__":
    sys.exit(main())
