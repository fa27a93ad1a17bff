"""The wire: NATS subjects and JSON messages between kernels, version 1.

Subjects (``<node>`` is a kernel's node name, ``w-<instance>`` for a process-isolated tenant;
names are letters, digits, ``-`` and ``_``, so each is one NATS token)::

    spl.v1.call.<node>.<instance>.<runnable>   request/reply: one bus call, served by <node>
    spl.v1.call.<node>.0.inflight              request/reply: which of my calls do you still
                                               serve? (``0`` is never an instance name)
    spl.v1.routes.announce                     a node's whole route table (on start, change,
                                               reconnect); ``"gone": true`` withdraws it
    spl.v1.routes.query                        request: every node answers with its table,
                                               so a kernel that joins late learns the routes
    spl.v1.config.<node>                       host -> worker: changes to its config view
    spl.v1.events.<node>                       worker -> host: its kernel's events, batched,
                                               and its requests for its whole config view
    spl.v1.control.<node>                      host -> worker: requests (graph snapshot, stop,
                                               a %%as cell to run inside it)

Every message is a JSON object with ``"v": 1``. A call::

    {"v": 1, "handler": "tenant-db-acme.query", "requested": "tenant-db.query",
     "params": {"table": "users", "target": "acme"}, "caller": "kernel-a", "id": 17,
     "timeout": 10.0, "config_rev": 42}

(``config_rev`` only on a host's calls to its own workers: see "Config revisions" below.)
``id`` numbers the caller's calls. A caller whose call stays unanswered asks the serving
node ``{"v": 1, "caller": "kernel-a", "ids": [17, 18]}`` on its ``inflight`` subject and gets
``{"v": 1, "serving": [18]}``: the ones it is still running (a reply sent before that answer
arrives before it). A call the node does not have was lost with a connection.

and its reply, either ``{"v": 1, "ok": true, "result": <JSON>}`` or::

    {"v": 1, "ok": false, "error": {"type": "InvalidParamsError", "message": "...",
     "handler": "tenant-db-acme.query", "node": "kernel-b"}}

Params and results are JSON; pydantic models travel as their JSON (``model_dump(mode="json")``)
and arrive as plain dicts. Params are validated where the handler lives. A route table::

    {"v": 1, "node": "kernel-b", "seq": 7,
     "handlers": {"tenant-db-acme.query": "kernel-b", "tenant-db-hooli.query": "w-tenant-db-hooli"},
     "routes": {"tenant-db.query": {"acme": "tenant-db-acme.query"}},
     "instances": {"tenant-db-acme": {"factory": "tenant-db", "target": "acme", ...}}}

``handlers`` maps each exact handler name to the node whose subject serves it (a kernel
advertises its process-isolated tenants' handlers too, served by their worker's node).

Config revisions (read-your-writes with a worker). A worker's config view has a *revision*,
counted by its host per worker: the bootstrap brings the worker to ``config_rev`` (a restarted
worker starts at the current one), and each message on ``spl.v1.config.<node>`` brings it to
the next::

    {"v": 1, "rev": 42, "set": {"tenants.hooli.db_url": "postgres://new/hooli"},
     "unset": ["tenants.hooli.pool"], "command": "%config set ..."}

``set`` and ``unset`` are leaves of the view (dotted keys); the worker applies ``unset``
first, then ``set``, in one batch (a leaf that became a section is unset, then its new leaves
set). One message per change of the view, whatever the writes: a ``batch()`` of writes, an
``unset``, a write of a whole subtree each become the leaves that changed. A write outside
the view sends nothing, so it takes no revision (the revision is the view's, not the host's
config's: a global one would make every worker wait for messages about others' sections).

A host's call to its worker carries ``config_rev``, the revision the host had sent when the
call was made (sending happens in the writer's ``config.set``, before it returns). The
worker runs the call once it has applied that revision, waiting at most ``config_wait``
seconds (bootstrap) for a message still in flight; otherwise the reply is a
``StaleConfigError`` naming both revisions, never an answer from older config. Calls from
other kernels carry none: they did not write this host's config.

A message whose ``rev`` is not the worker's next one means one was lost (a message before it
is relative to it), so the worker does not apply it and asks for its whole view, on its
events subject (the one subject it may publish to)::

    {"v": 1, "resync": 41}                      worker -> host: "I have revision 41"

and the host answers (at most every 0.2 s per worker) on the config subject with the whole
view at its current revision, which replaces what it had sent before (the worker's own writes
to keys the host never sent stay)::

    {"v": 1, "rev": 43, "full": true, "set": {<every leaf of the view>}, "unset": [],
     "command": "config resync (host)"}

A worker that times out waiting for a call's revision asks the same way, so the next call
succeeds. Messages at or below the worker's revision are ignored.

Changes the host has not sent yet are merged (``merge_changes``): a thread writing config in
a loop changes a view far faster than the kernel's loop publishes, and one message per
change queued without bound. A merged message carries ``base``, the revision it applies on
(its first change's ``rev`` - 1), and the last change's ``rev``, ``command`` and ``kv``::

    {"v": 1, "base": 41, "rev": 44, "set": {...}, "unset": [...], "command": "..."}

A worker applies a change only on its ``base`` (``rev`` - 1 when absent).

Control requests (host -> worker, on ``spl.v1.control.<node>``): ``{"op": "stop"}``;
``{"op": "graph"}`` (request: ``{"graph": {...}}``); and ``%%as`` inside a worker::

    {"v": 1, "op": "exec", "cell": "open('/proc/1/environ').read()", "first_line": 2,
     "header": "%%as tenant-db-hooli", "timeout": 10.0}

answered with ``{"v": 1, "ok": true, "value": <JSON>, "json": true, "repr": "...",
"stdout": "...", "stderr": "..."}`` or ``{"v": 1, "ok": false, "stdout": ..., "error":
{"type": "PermissionError", "message": "...", "line": "PermissionError: ...", "refusal":
true, "traceback": ["Traceback ...", ...]}}`` (``worker.run_cell``). **Only the host may
send it**: on the private server each worker's NATS user may publish on its own events
subject and nothing else (no control subject, its own included), and the admin, the host, is
the only other user; the server refuses anyone else's publish (tested). A worker that shares
the kernel's login (an external server this host cannot configure) runs no cells: its
bootstrap says ``"exec": false``.
"""

from __future__ import annotations

import builtins
import functools
import re
from collections.abc import Mapping
from typing import Any

import pydantic_core
from pydantic import BaseModel

from .. import errors as _errors
from ..errors import RemoteError, SignalpyLabError, WireFormatError

__all__ = [
    "ANNOUNCE",
    "LOGIN_READY",
    "QUERY",
    "VERSION",
    "call_subject",
    "config_subject",
    "control_subject",
    "decode",
    "encode",
    "encode_error",
    "events_subject",
    "leaves",
    "merge_changes",
    "mergeable",
    "probe_subject",
    "raise_remote_error",
    "remote_error",
    "serve_subject",
]

VERSION = 1
PREFIX = f"spl.v{VERSION}"
ANNOUNCE = f"{PREFIX}.routes.announce"
QUERY = f"{PREFIX}.routes.query"
#: The line a host writes on a worker's stdin, after the bootstrap line, once the worker's
#: NATS user is in force (a bootstrap with ``"login_follows": true`` waits for it before
#: connecting): the server reloads its users while the worker starts, not before.
LOGIN_READY = b"login\n"
_TOKEN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


def _token(value: str, what: str) -> str:
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise WireFormatError(f"A {what} on the wire is one NATS token of letters, digits, '-' "
                              f"and '_' (like 'tenant-db-acme'), got {value!r}.")
    return value


@functools.lru_cache(maxsize=4096)  # every call builds one: three regex checks saved
def call_subject(node: str, handler: str) -> str:
    """``spl.v1.call.<node>.<instance>.<runnable>`` for the exact handler name."""
    instance, _, runnable = handler.rpartition(".")
    return f"{PREFIX}.call.{_token(node, 'node name')}.{_token(instance, 'instance name')}." \
           f"{_token(runnable, 'runnable name')}"


def serve_subject(node: str) -> str:
    """What a node subscribes to, to serve every handler it hosts."""
    return f"{PREFIX}.call.{_token(node, 'node name')}.>"


def probe_subject(node: str) -> str:
    """Where ``node`` answers which calls it still serves (inside its serve subject)."""
    return f"{PREFIX}.call.{_token(node, 'node name')}.0.inflight"


def mergeable(first: dict[str, Any], then: dict[str, Any]) -> bool:
    """Whether config change ``then`` directly follows ``first`` (neither a whole view)."""
    return (isinstance(first.get("rev"), int) and isinstance(then.get("rev"), int)
            and then["rev"] == first["rev"] + 1
            and not first.get("full") and not then.get("full"))


def merge_changes(first: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """One config change doing what ``first`` then ``then`` do (see "Config revisions").

    A worker applies a change's ``unset`` before its ``set``. Both list leaves of the view
    as it was, so a key ``then`` unsets drops out of ``first``'s sets, and joins the unsets.
    """
    sets = dict(first.get("set") or {})
    unsets = dict.fromkeys(first.get("unset") or ())
    for key in then.get("unset") or ():
        sets.pop(key, None)
        unsets[key] = None
    sets.update(then.get("set") or {})
    merged: dict[str, Any] = {"base": first.get("base", first["rev"] - 1), "rev": then["rev"],
                              "set": sets, "unset": list(unsets),
                              "command": then.get("command") or first.get("command")}
    kvs = [kv for kv in (first.get("kv"), then.get("kv")) if isinstance(kv, int)]
    if kvs:
        merged["kv"] = max(kvs)
    return merged


def config_subject(node: str) -> str:
    return f"{PREFIX}.config.{_token(node, 'node name')}"


def events_subject(node: str) -> str:
    return f"{PREFIX}.events.{_token(node, 'node name')}"


def control_subject(node: str) -> str:
    return f"{PREFIX}.control.{_token(node, 'node name')}"


def handler_of(subject: str) -> str:
    """``spl.v1.call.<node>.<instance>.<runnable>`` -> ``<instance>.<runnable>``."""
    parts = subject.split(".")
    if len(parts) != 6 or parts[2] != "call":
        raise WireFormatError(f"Not a call subject: {subject!r} (expected "
                              f"'{PREFIX}.call.<node>.<instance>.<runnable>').")
    return f"{parts[4]}.{parts[5]}"


def leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"tenants.acme.db_url": ...}`` for every leaf of a nested mapping: the keys of a
    config message (an empty mapping is a leaf)."""
    out: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [(prefix, tree)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict) and value:
            stack.extend((f"{path}.{k}" if path else k, v) for k, v in value.items())
        elif path:
            out[path] = value
    return out


def encode(message: Mapping[str, Any]) -> bytes:
    """A message as JSON bytes, with ``"v"`` set; pydantic models become their JSON."""
    try:
        return pydantic_core.to_json({"v": VERSION, **message})
    except pydantic_core.PydanticSerializationError as exc:
        raise WireFormatError(f"Cannot send this over the wire as JSON: {exc}") from None


def jsonable_params(params: Mapping[str, Any] | BaseModel | None) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, BaseModel):
        return params.model_dump(mode="json")
    if isinstance(params, Mapping):
        return dict(params)
    raise WireFormatError(f"Call params are a mapping or a pydantic model, got "
                          f"{type(params).__name__}.")


def decode(data: bytes) -> dict[str, Any]:
    """JSON bytes to a message; refuses other versions with a message saying which."""
    try:  # pydantic-core's parser: a fifth of json.loads' time on a call message (UTF-8 only)
        message = pydantic_core.from_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError(f"A message is a JSON object, got {data[:60]!r}: {exc}") from None
    if not isinstance(message, dict):
        raise WireFormatError(f"A message is a JSON object, got {type(message).__name__}.")
    version = message.get("v")
    if version != VERSION:
        raise WireFormatError(f"Wire version {version!r} is not spoken here (this side speaks "
                              f"v{VERSION}); upgrade the older side.")
    return message


def encode_error(exc: BaseException, handler: str, node: str) -> bytes:
    return encode({"ok": False, "error": {
        "type": type(exc).__name__, "message": str(exc), "handler": handler, "node": node}})


#: Error types a reply may name: ours and the builtins. Anything else is a RemoteError.
_KNOWN: dict[str, type[BaseException]] = {
    **{name: obj for name, obj in vars(builtins).items()
       if isinstance(obj, type) and issubclass(obj, Exception)},
    **{name: obj for name, obj in vars(_errors).items()
       if isinstance(obj, type) and issubclass(obj, SignalpyLabError)},
}


def remote_error(error: Mapping[str, Any]) -> BaseException:
    """The error ``{"type", "message"}`` as the same type (ours or a builtin), message as
    sent; any other type is a ``RemoteError`` naming it."""
    type_name = str(error.get("type", "Exception"))
    message = str(error.get("message", ""))
    cls = _KNOWN.get(type_name)
    if cls is not None:
        try:
            return cls(message)
        except Exception:  # a builtin with another signature (UnicodeDecodeError, ...)
            pass
    return RemoteError(f"{type_name}: {message}")


def raise_remote_error(error: Mapping[str, Any]) -> None:
    """Raise the error a reply carries as the same type, naming the remote handler."""
    type_name = str(error.get("type", "Exception"))
    where = f"remote handler {error.get('handler')!r} on {error.get('node')!r}"
    message = f"{error.get('message', '')} ({where})"
    cls = _KNOWN.get(type_name)
    if cls is None:
        raise RemoteError(f"{type_name}: {message}")
    try:
        exc = cls(message)
    except Exception:  # a builtin with another signature (UnicodeDecodeError, ...)
        raise RemoteError(f"{type_name}: {message}") from None
    raise exc
