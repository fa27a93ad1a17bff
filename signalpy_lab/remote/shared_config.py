"""One config across kernels: the runtime layer on a JetStream key-value bucket.

    transport = await NatsTransport(kernel, urls, ...).start()
    shared = await SharedConfig(transport).start()        # this kernel's config, shared
    kernel.registry.require("IConfig").set("tenants.acme.db_url", "postgres://new/acme")
    # every kernel sharing the bucket applies it; only acme's readers recompute, anywhere

Without it, config belongs to each kernel (the in-memory keyspace, the default: the
single-process lab needs no server). With it, the config provider's *runtime layer* (what
``config.set`` and ``unset`` write) lives in a JetStream KV bucket (``spl-config`` by
default) on the servers the kernel's transport is connected to; each kernel keeps its own
``defaults`` layer under it, as before, so ``explain`` and ``unset`` keep their meaning.

How it maps:

* **Keys** are today's dotted keys, one KV key each (``tenants.acme.db_url``). A value set at
  a key replaces its subtree: the bucket gets the key's value (JSON, a whole mapping if one was
  set) after deletes of the keys it held below it; ``unset`` deletes the key and those below.
  KV keys allow letters, digits and ``-/_=.``; a key with anything else cannot be shared
  (``ConfigKeyError`` before anything changes).
* **One watcher per process** on the whole bucket. At ``start()`` the bucket's current entries
  are applied as one batch (and local runtime values the bucket lacks are published: the
  first kernel seeds it). After that each entry is applied in revision order, under the cause
  ``set on <kernel>, rev <n>``: the lab draws a remote write as an epoch of its own, and
  ``%why`` names the kernel and the revision. A kernel's own writes come back too; an entry
  whose value is already there changes nothing.
* **Writes** apply here at once (a read right after sees them) and go to the bucket: from a
  thread other than the kernel's loop (a notebook cell, a script), ``config.set`` waits for
  the put (bounded) and raises if it fails; on the kernel's loop (component code, which must
  not block it) the put is sent and awaited before the kernel's next remote call.
* **Read-your-writes across kernels**: a call to another kernel carries ``kv_rev``, the
  highest revision this kernel has written or applied (after its puts in flight landed);
  the serving kernel applies the bucket up to it before running the handler (bounded wait,
  then ``ConfigBackendError`` naming both revisions), and passes it on to its own workers
  (``process.py``), so a call made after a write, from any kernel, sees it.
* **Compare-and-set**: ``config.set(key, value, expect_revision=n)`` writes only if the key's
  last revision is ``n`` (``ConfigConflictError`` naming the revision found); ``0`` means the
  key must not exist. ``config.history(key)`` lists the key's kept revisions (who, when, what).
* **Failures**: with the server unreachable, reads keep the last known values and writes fail
  at once with ``ConfigBackendError`` saying so; the lab shows the state
  (``SharedConfig.state``). The watcher is an ordered consumer: after a reconnect it resumes
  from the last revision it applied, so a kernel catches up with what it missed.
* **Scoping** stays the config provider's (a tenant's view reads only its own keys; ``apps.``
  is private per component; secrets are masked in every view). On the server, only the
  kernels' own users reach the bucket's subjects (``$KV.<bucket>.>``, ``$JS.API.>``): a
  worker's user is refused them by the server (its permissions list only its own subjects).
  The bucket holds values in clear, ``apps.`` secrets included, in the server's store: keep
  the server's store as private as the kernels' config.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigBackendError, ConfigConflictError, ConfigKeyError
from ..kernel.events import caused_by, current_command
from ..kernel.graph import context as engine
from ..kernel.reactive import batch
from ..kernel.redaction import redact

__all__ = ["BUCKET", "HistoryEntry", "SharedConfig", "share"]

_log = logging.getLogger("signalpy_lab.remote.shared_config")

#: The bucket's name, unless given.
BUCKET = "spl-config"
#: Revisions kept per key (``%config history``).
HISTORY = 16
#: Seconds a write from outside the loop waits for its put; a served call for its revision.
WAIT_SECONDS = 2.0

_KEY = re.compile(r"^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$")
_MISSING: Any = object()


@dataclass(frozen=True)
class HistoryEntry:
    """One kept revision of a key: its value (None when deleted), who wrote it and when."""

    revision: int
    deleted: bool
    value: Any
    by: str | None
    command: str | None
    when: float | None


def _encode(value: Any, by: str, command: str | None) -> bytes:
    return json.dumps({"v": value, "by": by, "cmd": command, "at": time.time()},
                      separators=(",", ":"), default=str).encode()


def _decode(data: bytes) -> dict[str, Any]:
    envelope = json.loads(data)
    if not isinstance(envelope, dict) or "v" not in envelope:
        raise ValueError("not a signalpy_lab config entry")
    return envelope


class SharedConfig:
    """This kernel's config runtime layer, shared through a JetStream KV bucket (module doc)."""

    def __init__(self, transport: Any, *, bucket: str = BUCKET, history: int = HISTORY) -> None:
        self.transport = transport
        self.kernel = transport.kernel
        self.bucket = bucket
        self.history_kept = history
        #: The highest revision applied here from the bucket (this kernel's writes included).
        self.applied = 0
        #: The highest revision this kernel knows of: applied, or written by it.
        self.seen = 0
        #: ``stopped``, ``connected`` or ``down`` (the server unreachable: writes refused).
        self.state = "stopped"
        self._kv: Any = None
        self._watcher: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._keys: set[str] = set()  # what the bucket holds now, as far as this kernel knows
        self._changed = asyncio.Event()
        self._lock = threading.Lock()
        self._config: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.transport.node)

    async def start(self) -> SharedConfig:
        """Open (or create) the bucket, apply what it holds, share this kernel's config."""
        nc = self.transport._nc
        if nc is None or not nc.is_connected:
            raise ConfigBackendError("SharedConfig needs a started, connected NatsTransport: "
                                     "await NatsTransport(kernel, urls, ...).start() first")
        if self.kernel.registry.get("IConfig") is None:
            raise ConfigBackendError(
                f"SharedConfig shares the config provider's runtime layer, and kernel "
                f"{self.kernel.name!r} has no active IConfig: discover the providers "
                f"(kernel.discover(signalpy_lab.providers.DEFAULT_PROVIDERS)) before boot()")
        self._loop = asyncio.get_running_loop()
        js = nc.jetstream()
        try:
            self._kv = await js.create_key_value(bucket=self.bucket,
                                                 history=self.history_kept)
        except Exception as exc:  # an existing bucket, or no JetStream on the server
            try:
                self._kv = await js.key_value(self.bucket)
            except Exception:
                raise ConfigBackendError(
                    f"the shared config bucket {self.bucket!r} cannot be opened on "
                    f"{self.transport.url}: {type(exc).__name__}: {exc} (does the server run "
                    f"JetStream? nats-server -js, or jetstream {{}} in its config)") from None
        self._config = self.kernel.registry.require("IConfig")
        keys = self._config._keys
        snapshot = await self._kv.watchall()  # the bucket now: each key's last entry
        entries: list[Any] = []
        while True:
            entry = await snapshot.updates(timeout=10)
            if entry is None:
                break
            entries.append(entry)
        await snapshot.stop()
        with caused_by(f"shared config snapshot from {self.bucket}"), batch():
            for entry in sorted(entries, key=lambda e: e.revision):
                self._apply(entry.key, int(entry.revision), entry.operation, entry.value, keys)
        self.state = "connected"
        mine = [(p, v) for p, v in keys.runtime_items() if ".".join(p) not in self._keys]
        keys.replica = self
        for path, value in mine:  # the first kernel seeds the bucket with what it had
            await self._put(".".join(path), value, "shared config seed")
        await self._subscribe()
        self.transport.shared_config = self
        # Read-your-writes for the seed too: returned earlier, the kernel reported revision 0
        # (``%config show`` right after ``%config share``) until its watcher caught up. Not
        # an error if the watcher is slower than that: sharing has started either way.
        try:
            await self.reach(self.seen, "reporting the shared config's revision")
        except ConfigBackendError as exc:
            _log.warning("shared config %r is shared, but its watcher is behind: %s",
                         self.bucket, exc)
        return self

    async def stop(self) -> None:
        """Stop sharing: this kernel's config keeps its values and is its own again."""
        if self._config is not None and self._config._keys.replica is self:
            self._config._keys.replica = None
        if getattr(self.transport, "shared_config", None) is self:
            self.transport.shared_config = None
        await self._unsubscribe()
        self.state = "stopped"

    # -- the watcher -------------------------------------------------------------------------

    async def _subscribe(self) -> None:
        """Watch the bucket from the revision after the last one applied: an ordered
        consumer of its stream, so after a reconnect nothing missed is skipped."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        js = self.transport._nc.jetstream()
        start = self.applied + 1
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                opt_start_seq=start)
        self._watcher = await js.subscribe(f"$KV.{self.bucket}.>", cb=self._on_entry,
                                           ordered_consumer=True, config=config)

    async def _unsubscribe(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            try:
                await watcher.unsubscribe()
            except Exception:
                pass

    async def resume(self) -> None:
        """The connection came back (``NatsTransport``): watch again from the revision after
        the last applied, catching up with what was written meanwhile."""
        if self.state == "stopped" or self._config is None:
            return
        await self._unsubscribe()
        try:
            await self._subscribe()
            self.state = "connected"
        except Exception as exc:
            self.state = "down"
            _log.warning("the shared config could not watch %r again: %s", self.bucket, exc)

    async def _on_entry(self, msg: Any) -> None:
        prefix = f"$KV.{self.bucket}."
        if not msg.subject.startswith(prefix):
            return
        headers = msg.headers or {}
        operation = headers.get("KV-Operation")
        try:
            self._apply(msg.subject[len(prefix):], int(msg.metadata.sequence.stream),
                        operation, msg.data, self._config._keys)
        except Exception:
            _log.exception("the shared config could not apply %r", msg.subject)

    def _apply(self, key: str, revision: int, operation: str | None, data: bytes,
               keys: Any) -> None:
        """Apply one bucket entry (revision order) to the local keyspace, unless it holds it."""
        path = tuple(key.split("."))
        if revision <= self.applied:
            return
        if operation in ("DEL", "PURGE"):
            self._keys.discard(key)
            if keys.source(path) in ("runtime", "runtime+defaults"):
                with caused_by(f"unset on the shared config, rev {revision}"):
                    keys.delete_remote(path)
        else:
            self._keys.add(key)
            try:
                envelope = _decode(data)
            except ValueError:
                _log.warning("ignored a bucket entry %r that is not a config value", key)
                self._advance(revision)
                return
            value, by, command = envelope["v"], envelope.get("by"), envelope.get("cmd")
            if keys.peek(path) != value or keys.source(path) not in ("runtime",
                                                                     "runtime+defaults"):
                cause = f"set on {by or '?'}, rev {revision}" + (
                    f": {redact(command)}" if command and by != self.name else "")
                with caused_by(cause):
                    keys.apply_remote(path, value)
        self._advance(revision)

    def _advance(self, revision: int) -> None:
        self.applied = max(self.applied, revision)
        self.seen = max(self.seen, revision)
        self._changed.set()
        self._changed = asyncio.Event()

    # -- the keyspace's replica (its writes come here) -----------------------------------

    def check(self, path: tuple[str, ...]) -> None:
        key = ".".join(path)
        if not _KEY.match(key):
            raise ConfigKeyError(
                f"{key!r} cannot be shared: the shared config's keys are dotted parts of "
                f"letters, digits and '-', '/', '_', '=' (a JetStream key-value bucket).")
        nc = self.transport._nc
        if nc is None or not nc.is_connected or self._kv is None:
            self.state = "down"
            raise ConfigBackendError(
                f"{key!r} was not written: the shared config's server "
                f"({self.transport.url}) is unreachable. Reads keep the last known values; "
                f"writes are refused until it is back (the transport reconnects, and this "
                f"kernel then catches up from the revisions it missed).")
        self.state = "connected"

    def wrote(self, path: tuple[str, ...], value: Any) -> None:
        key = ".".join(path)
        below = [k for k in self._keys if k.startswith(key + ".")]
        self._send(self._replace(key, value, below, current_command()))

    def deleted(self, path: tuple[str, ...]) -> None:
        key = ".".join(path)
        gone = [k for k in self._keys if k == key or k.startswith(key + ".")]
        self._send(self._remove(gone))

    def _send(self, coroutine: Any) -> Any:
        """Run a bucket operation: waited for from another thread, sent from the loop's."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coroutine.close()
            raise ConfigBackendError("the shared config is stopped: its loop has gone")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # component code on the kernel's loop: never block it
            future = asyncio.ensure_future(coroutine)
            self._pending.add(future)
            future.add_done_callback(self._landed)
            return None
        if engine.batch_depth > 0:
            # Inside a batch() this thread holds the engine's lock, which the loop may need
            # to apply an entry: waiting here could stall both. Send it; calls wait for it.
            async def tracked() -> Any:
                return await coroutine

            def track() -> None:
                future = asyncio.ensure_future(tracked())
                self._pending.add(future)
                future.add_done_callback(self._landed)

            loop.call_soon_threadsafe(track)
            return None
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(WAIT_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ConfigBackendError(
                f"the shared config's server ({self.transport.url}) did not take the write "
                f"within {WAIT_SECONDS:g}s; it is kept here, and may or may not be there "
                f"(see config.history)") from None

    def _landed(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            _log.error("a shared config write from the kernel's loop failed: %s",
                       future.exception())

    async def _replace(self, key: str, value: Any, below: list[str],
                       command: str | None) -> int:
        await self._remove(below)
        return await self._put(key, value, command)

    async def _remove(self, keys: list[str]) -> int:
        revision = self.seen
        for key in keys:
            revision = await self._kv.delete(key)
            self._keys.discard(key)
            self.seen = max(self.seen, int(revision or 0))
        return revision

    async def _put(self, key: str, value: Any, command: str | None,
                   expect: int | None = None) -> int:
        data = _encode(value, self.name, redact(command) if command else None)
        if expect is None:
            revision = await self._kv.put(key, data)
        elif expect == 0:
            revision = await self._kv.create(key, data)
        else:
            revision = await self._kv.update(key, data, last=expect)
        self._keys.add(key)
        self.seen = max(self.seen, int(revision))
        return int(revision)

    # -- compare-and-set, history, read-your-writes --------------------------------------

    def _on_own_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _wait(self, coroutine: Any, what: str, instead: str) -> Any:
        """Run ``coroutine`` on the kernel's loop and wait for it, from any other thread."""
        if self._on_own_loop():
            coroutine.close()
            raise ConfigBackendError(
                f"{what} waits for the server's answer, so it cannot block the kernel's own "
                f"loop: there, use `await config.shared.{instead}`")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(WAIT_SECONDS)

    def compare_and_set(self, path: tuple[str, ...], value: Any, expect: int) -> int:
        """Write ``value`` at ``path`` if its last revision is ``expect`` (0: it must not
        exist); the new revision. From outside the kernel's loop (it waits for the answer);
        on the loop, ``await set_if_revision(key, value, expect)``."""
        self.check(path)
        revision = self._wait(self._cas(".".join(path), value, expect, current_command()),
                              "a compare-and-set", "set_if_revision(key, value, revision)")
        self._config._keys.apply_remote(path, value)  # here at once, under the caller's cause
        return int(revision)

    async def set_if_revision(self, key: str, value: Any, expect: int) -> int:
        """``config.set(key, value, expect_revision=expect)`` for code on the kernel's loop."""
        path = tuple(key.split("."))
        self.check(path)
        revision = await self._cas(key, value, expect, current_command())
        self._config._keys.apply_remote(path, value)
        return revision

    async def _cas(self, key: str, value: Any, expect: int, command: str | None) -> int:
        try:
            return int(await self._put(key, value, command, expect))
        except Exception as exc:
            if "wrong last sequence" in str(exc) or "key exists" in str(exc).lower():
                found = await self._revision_of(key)
                raise ConfigConflictError(
                    f"{key!r} was not written: expected its revision {expect}, found "
                    f"{found} (another writer came first); read it again and retry") from None
            raise

    async def _revision_of(self, key: str) -> int:
        try:
            entry = await self._kv.get(key)
            return int(entry.revision)
        except Exception:
            return 0

    def history(self, path: tuple[str, ...]) -> list[HistoryEntry]:
        """The kept revisions of a key, oldest first. From outside the kernel's loop; on the
        loop, ``await history_of(key)``."""
        return self._wait(self.history_of(".".join(path)),  # type: ignore[no-any-return]
                          "config.history(key)", "history_of(key)")

    async def history_of(self, key: str) -> list[HistoryEntry]:
        """``config.history(key)`` for code on the kernel's loop."""
        try:
            entries = list(await self._kv.history(key))
        except Exception as exc:
            if "not found" not in str(exc).lower():
                raise
            entries = []
        out = []
        for entry in entries:
            deleted = entry.operation in ("DEL", "PURGE")
            envelope: dict[str, Any] = {}
            if not deleted:
                try:
                    envelope = _decode(entry.value)
                except ValueError:
                    envelope = {"v": None}
            out.append(HistoryEntry(int(entry.revision), deleted, envelope.get("v"),
                                    envelope.get("by"), envelope.get("cmd"),
                                    envelope.get("at")))
        return out

    async def barrier(self) -> int:
        """The revision a call from here carries: after this kernel's puts in flight landed."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        return self.seen

    async def reach(self, revision: int, what: str = "a call") -> None:
        """Apply the bucket up to ``revision`` before ``what`` runs (bounded wait)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while self.applied < revision:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConfigBackendError(
                    f"{what} was not run: it was made after shared config revision {revision} "
                    f"and kernel {self.name!r} has applied only {self.applied} after "
                    f"{WAIT_SECONDS:g}s (its server connection is slow or down)")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    def __repr__(self) -> str:
        return (f"<SharedConfig {self.bucket!r} on {self.transport.url}: {self.state}, "
                f"revision {self.applied}>")


async def share(kernel: Any, bucket: str = BUCKET) -> SharedConfig:
    """Share ``kernel``'s config through ``bucket`` on the servers its process isolation uses
    (a private nats-server with JetStream, started if needed, or ``$SIGNALPY_LAB_NATS_URL``):
    what ``%config share`` does. Returns the running ``SharedConfig`` (the same one again if
    it is shared already)."""
    config = kernel.registry.require("IConfig")
    if config.shared is not None:
        return config.shared  # type: ignore[no-any-return]
    host = await kernel._isolation_host("process")
    return await SharedConfig(host.transport, bucket=bucket).start()
