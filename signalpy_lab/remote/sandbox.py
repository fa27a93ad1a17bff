"""Confining the current process: what a worker may still reach once tenant code runs in it.

A worker calls ``confine()`` once, at start-up, while it has a single thread and before it
loads any tenant code::

    report = confine(Confinement.for_worker(storage=prefix, temp_dir=tmp, connect_ports=[4222]))
    print(f"sandbox: {report}")          # sandbox: landlock v7   |   sandbox: none (why)

and is started with ``env=scrubbed_environment()``. ``confine`` applies, in this order:

1. closes every inherited file descriptor except ``keep_fds`` (stdin, stdout, stderr): a
   descriptor opened before confinement is never checked again, whatever the rules say;
2. ``prctl(PR_SET_NO_NEW_PRIVS, 1)``: no ``execve`` can grant privileges again (Landlock and
   seccomp require it);
3. ``prctl(PR_SET_DUMPABLE, 0)``: no core dumps, and ``/proc/<pid>/mem`` (and ``environ``,
   ``maps``, ...) of this process belong to root, so a sibling needs ``CAP_SYS_PTRACE``;
4. a Landlock ruleset (``landlock_restrict_self``), best effort for the kernel's ABI;
5. a seccomp filter for what Landlock v7 misses (below);
6. drops every capability (bounding set, ambient, effective, permitted, inheritable): these
   machines run workers as root, and Landlock leaves root's capabilities (load a kernel
   module, raw sockets, ``mknod``, reboot) untouched.

What a confined worker (``Confinement.for_worker``) may do:

* read, never write nor execute: Python (``sys.prefix``, ``sys.base_prefix``, the stdlib,
  site-packages, this package's folder), what the dynamic loader reads (``/usr``, ``/lib``,
  ``/lib64``, ``/etc/ld.so.cache``) and ``/etc/localtime``; read and write ``/dev/null``;
* read and write its own storage prefix and its private temp dir (``tempfile`` points there):
  create, rename, truncate and remove files and folders, but make no device node, FIFO,
  socket file or symlink;
* open TCP sockets (IPv4, IPv6) and connect them to the listed ports (the NATS server's);
* signal, and connect to abstract unix sockets of, processes inside its own domain only.

What it is refused (``EACCES``/``EPERM``), each refusal tested with hostile code in a real
confined child (``tests/remote/test_sandbox.py``): reading or listing anything else (another
tenant's folder, the server's config, ``/tmp``, ``/etc``, ``/proc`` entirely, so no
``/proc/<pid>/environ``, ``cmdline``, ``maps`` or ``mem`` of anyone); writing outside its two
folders; executing any program; TCP connect to any other port; bind or listen on any port;
``kill()`` of a process outside its domain (the host, a sibling worker); connect to an
abstract unix socket outside it; ptrace of anything outside it; every capability-guarded call.

**Why a seccomp filter too.** Probing Landlock v7 on these machines (Linux 6.18) found ways
around it: ``listen()`` on an unbound socket binds an ephemeral port without the bind hook;
``sendto(..., MSG_FASTOPEN, addr)`` and an MPTCP socket connect to ports the ruleset refuses;
``connect()`` to a *named* unix socket is not checked (a root daemon's socket is root);
``chmod``, ``utime`` and ``setxattr`` are not checked on any path (a worker owns the host's
files: ``chmod u+s`` on a host binary would make every local user root); and ``prlimit`` sets
the limits of any process of the same user (the host's open files to 0). The filter refuses
``listen``, any ``MSG_FASTOPEN`` send, every ``socket()`` but TCP over IPv4/IPv6 (so no UDP,
raw, MPTCP, AF_UNIX, netlink; ``socketpair`` stays, asyncio needs it), path-based ``chmod``,
``chown``, ``utime`` and xattr changes (``fchmod`` on a file it opened stays), ``prlimit`` on
another process, ``inotify_add_watch`` (activity in another tenant's folder), io_uring (its
operations pass seccomp by), System V IPC (host-wide objects found by number) and the kernel
keyrings (root's user keyring is the host's); calls from another architecture or the x32 ABI
get ``EPERM``, syscalls newer than Linux 6.6's ``fchmodat2`` get ``ENOSYS``. It is classic BPF
written out in ``_linux.py`` (sixty lines, syscall numbers from ``asm/unistd_64.h`` and
``asm-generic/unistd.h``, cross-checked by the tests against libseccomp's resolver where it is
installed) rather than ``pyseccomp`` (a 2021 ctypes shim) over libseccomp, which slim images
lack.

What it does **not** confine: a path's metadata (``stat`` tells whether a guessed name exists),
CPU, memory and process count (a fork bomb: that is cgroups' work), the rest of the kernel's
attack surface (user namespaces, every syscall the filter allows), and anything reachable
through a descriptor it was allowed to keep. Another OS user or a container closes those.

Where the OS has no Landlock (not Linux, a kernel before 5.13 or without it in ``lsm=``, a
seccomp filter refusing the syscalls as some container runtimes do), ``confine`` still
applies the rest and reports ``none (why)``: the worker runs, and the lab says so plainly.
On a kernel with an older ABI it handles only what that ABI knows (the kernel docs'
"best-effort" example) and the report names what is missing (``scoping needs ABI 6``).

**The Landlock binding is our own ctypes layer** (``_linux.py``) over ``syscall(2)``: 444
``landlock_create_ruleset``, 445 ``landlock_add_rule``, 446 ``landlock_restrict_self``, one
number on x86_64 and in the generic table that aarch64, riscv64 and loongarch64 use (checked
in the UAPI headers). The PyPI ``landlock`` package (1.0.0.dev5, May 2025, alpha) covers only
the filesystem: its ruleset attribute has no ``handled_access_net`` or ``scoped`` field, so no
TCP port rules (ABI 4) and no signal or abstract-socket scoping (ABI 6), two of the three
things a worker needs; and it decides failure from ``errno`` rather than the return value.
The bindings that do cover ABI 6 (``py-landlock`` 0.1.1, ``landlockpy`` 0.2.0) are a few
months old, one maintainer each, and not among PyPI's most downloaded: for a security
boundary, a hundred readable lines checked against the kernel header beat a dependency
nobody here audits. No package is added.
"""

from __future__ import annotations

import functools
import os
import stat
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SandboxError
from ._linux import (
    FILE_RIGHTS,
    FS_RIGHTS,
    KNOWN_ABI,
    NET_RIGHTS,
    REFUSED,
    SCOPES,
    Linux,
    bits,
    linux,
)

__all__ = [
    "Confinement",
    "SandboxReport",
    "confine",
    "landlock_abi",
    "python_read_paths",
    "scrubbed_environment",
]

#: What a read-only path grants, and what a read-write one does. Nothing anywhere grants
#: execute, device nodes, FIFOs, socket files, symlinks or device ioctls.
_READ = ("read_file", "read_dir")
_READ_WRITE = ("read_file", "read_dir", "write_file", "truncate", "remove_dir", "remove_file",
               "make_dir", "make_reg", "refer")


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers (7 on these machines), 0 if none.

    >>> landlock_abi() >= 0
    True
    """
    calls = linux()
    return calls.landlock_abi()[0] if calls is not None else 0


# --- what to confine to ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)  # ~5 ms of path resolving: the fork server pays it once
def python_read_paths() -> tuple[Path, ...]:
    """What this interpreter and its loader read: prefixes, stdlib, site-packages, ``/usr``...

    Only paths that exist, each once, none inside another. ``sys.path`` entries from
    ``PYTHONPATH`` or an editable install's source tree are *not* included (they may be a
    whole repository): pass them as ``extra_read``, or import what you need before confining.
    """
    package = Path(__file__).resolve().parents[1]  # signalpy_lab itself, even when editable
    paths: list[str] = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                        str(package)]
    paths += [sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    # The dynamic loader (ld.so) and the C library's time zone; /lib and /lib64 are symlinks
    # into /usr on merged-/usr systems, and a rule follows them.
    paths += ["/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/localtime"]
    return _outermost(Path(p) for p in paths if p)


def _outermost(paths: Iterable[Path]) -> tuple[Path, ...]:
    """Existing, resolved, deduplicated paths with none inside another (order kept)."""
    found: list[Path] = []
    for path in paths:
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if real not in found:
            found.append(real)
    return tuple(p for p in found
                 if not any(q != p and p.is_relative_to(q) and q.is_dir() for q in found))


@dataclass(frozen=True)
class Confinement:
    """What a confined process may still reach; everything else is refused.

    ``read_only`` paths (and everything beneath) may be read and listed; ``read_write`` ones
    also written (files and folders; no device nodes, FIFOs, sockets or symlinks);
    ``temp_dir`` is read-write too and becomes ``tempfile``'s default. ``connect_ports`` are
    the TCP ports it may connect to; it may bind none. ``keep_fds`` stay open, every other
    descriptor is closed. Build one with ``Confinement.for_worker(...)``.
    """

    read_only: tuple[Path, ...] = ()
    read_write: tuple[Path, ...] = ()
    temp_dir: Path | None = None
    connect_ports: tuple[int, ...] = ()
    keep_fds: tuple[int, ...] = (0, 1, 2)
    #: Each may be switched off, to see what it refuses (the tests do): never in a worker.
    scope_signals: bool = True
    scope_abstract_sockets: bool = True
    drop_capabilities: bool = True
    close_fds: bool = True
    seccomp: bool = True

    def __post_init__(self) -> None:
        for name in ("read_only", "read_write"):
            paths = getattr(self, name)
            if isinstance(paths, str | Path):
                raise SandboxError(f"Confinement.{name} takes a sequence of paths, got one path "
                                   f"{str(paths)!r}; write ({str(paths)!r},).")
            object.__setattr__(self, name, tuple(Path(p) for p in paths))
        if self.temp_dir is not None:
            object.__setattr__(self, "temp_dir", Path(self.temp_dir))
        ports = tuple(self.connect_ports)
        bad = [p for p in ports if not isinstance(p, int) or isinstance(p, bool)
               or not 0 < p < 65536]
        if bad:
            raise SandboxError(f"Confinement.connect_ports are TCP ports 1-65535, got {bad!r}.")
        object.__setattr__(self, "connect_ports", ports)
        fds = tuple(self.keep_fds)
        if any(not isinstance(fd, int) or fd < 0 for fd in fds):
            raise SandboxError(f"Confinement.keep_fds are descriptor numbers >= 0, got {fds!r}.")
        object.__setattr__(self, "keep_fds", fds)

    @classmethod
    def for_worker(cls, *, storage: str | Path | None, temp_dir: str | Path | None,
                   connect_ports: Iterable[int], extra_read: Iterable[str | Path] = (),
                   keep_fds: Iterable[int] = (0, 1, 2)) -> Confinement:
        """A worker's confinement: Python read-only, its storage and temp dir, the NATS ports.

        ``storage`` is the tenant's own prefix (``<root>/<instance>``) and ``temp_dir`` a
        private folder; the host creates both before the worker confines itself.

        >>> Confinement.for_worker(storage=None, temp_dir=None, connect_ports=[4222]).connect_ports
        (4222,)
        """
        return cls(read_only=python_read_paths() + tuple(Path(p) for p in extra_read),
                   read_write=(Path(storage), Path("/dev/null")) if storage is not None
                   else (Path("/dev/null"),),
                   temp_dir=Path(temp_dir) if temp_dir is not None else None,
                   connect_ports=tuple(connect_ports), keep_fds=tuple(keep_fds))


@dataclass(frozen=True)
class SandboxReport:
    """What ``confine`` applied. ``str(report)`` is the lab's one word: ``landlock v7``.

    ``landlock_abi`` is 0 when no Landlock applied, and ``reason`` then says why.
    """

    landlock_abi: int
    reason: str | None = None
    fs_rights: tuple[str, ...] = ()
    net_rights: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    connect_ports: tuple[int, ...] = ()
    missing: tuple[str, ...] = ()
    seccomp: tuple[str, ...] = ()
    seccomp_reason: str | None = None
    no_new_privs: bool = False
    not_dumpable: bool = False
    fds_closed: int = 0
    capabilities_dropped: int | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        if self.landlock_abi:
            return f"landlock v{self.landlock_abi}"
        return f"none ({self.reason})"

    def describe(self) -> str:
        """One line for ``%instances``: the Landlock part, then the rest of what applied."""
        parts = [str(self)]
        if self.landlock_abi:
            tcp = (f"tcp connect to {', '.join(map(str, self.connect_ports)) or 'no port'} only, "
                   "no bind" if self.net_rights else "tcp not ruled")
            scoped = " and ".join(s.replace("_", " ") + "s" for s in self.scopes)
            parts.append(f"files: {len(self.fs_rights)} rights ruled, {tcp}, "
                         f"{f'{scoped} scoped' if scoped else 'nothing scoped'}")
            if self.missing:
                parts.append("missing " + "; ".join(self.missing))
        parts.append(f"seccomp refuses {', '.join(self.seccomp)}" if self.seccomp
                     else f"no seccomp filter ({self.seccomp_reason or 'not asked for'})")
        parts.append(", ".join(
            [("no-new-privs" if self.no_new_privs else "privileges not frozen"),
             ("not dumpable" if self.not_dumpable else "dumpable"),
             f"{self.fds_closed} inherited fds closed",
             ("capabilities kept" if self.capabilities_dropped is None
              else f"{self.capabilities_dropped} capabilities dropped"),
             f"{self.seconds * 1000:.1f} ms"]))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy, for a worker's ready message."""
        return {"sandbox": str(self), "description": self.describe(),
                "landlock_abi": self.landlock_abi, "reason": self.reason,
                "fs_rights": list(self.fs_rights), "net_rights": list(self.net_rights),
                "scopes": list(self.scopes), "connect_ports": list(self.connect_ports),
                "missing": list(self.missing), "seccomp": list(self.seccomp),
                "seccomp_reason": self.seccomp_reason, "no_new_privs": self.no_new_privs,
                "not_dumpable": self.not_dumpable, "fds_closed": self.fds_closed,
                "capabilities_dropped": self.capabilities_dropped, "seconds": self.seconds}


# --- applying it -------------------------------------------------------------------------


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _close_inherited(keep: Iterable[int]) -> int:
    """Close every descriptor but ``keep``; how many were open."""
    kept = set(keep)
    try:
        open_fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc (not Linux): every number below the limit that is open
        import resource

        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        open_fds = []
        for fd in range(min(limit if limit > 0 else 4096, 65536)):
            try:
                os.fstat(fd)
                open_fds.append(fd)
            except OSError:
                pass
    closed = 0
    for fd in sorted(set(open_fds) - kept):
        try:
            os.close(fd)
            closed += 1
        except OSError:
            pass  # the listing's own descriptor, already gone
    return closed


def _allow_paths(calls: Linux, ruleset: int, paths: Iterable[Path], rights: tuple[str, ...],
                 abi: int, field_name: str) -> None:
    for path in paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError as exc:
            raise SandboxError(f"Confinement.{field_name}: cannot open {str(path)!r} "
                               f"({exc.strerror}); create it before confine() or leave it out."
                               ) from None
        try:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            allowed = rights if is_dir else tuple(r for r in rights if r in FILE_RIGHTS)
            calls.landlock_allow_path(ruleset, fd, bits(FS_RIGHTS, abi, allowed)[0])
        except OSError as exc:
            raise SandboxError(f"Landlock refused a rule for {str(path)!r}: {exc.strerror}."
                               ) from None
        finally:
            os.close(fd)


def _landlock(calls: Linux, abi: int, c: Confinement) -> dict[str, Any]:
    """Handle every right ``abi`` knows, allow what ``c`` lists, restrict this thread."""
    known = min(abi, KNOWN_ABI)  # best effort: a newer kernel gets what this module knows
    fs_mask, fs_names = bits(FS_RIGHTS, known)
    net_mask, net_names = bits(NET_RIGHTS, known)
    wanted = [n for n, on in (("signal", c.scope_signals),
                              ("abstract_unix_socket", c.scope_abstract_sockets)) if on]
    scope_mask, scope_names = bits(SCOPES, known, wanted)
    missing = (["tcp bind/connect rules need ABI 4"] if not net_mask else []) + (
        ["signal and abstract-socket scoping needs ABI 6"] if wanted and not scope_mask else [])
    ruleset = calls.landlock_ruleset(fs_mask, net_mask, scope_mask)
    try:
        _allow_paths(calls, ruleset, c.read_only, _READ, known, "read_only")
        _allow_paths(calls, ruleset, (*c.read_write, *((c.temp_dir,) if c.temp_dir else ())),
                     _READ_WRITE, known, "read_write")
        if net_mask:
            for port in c.connect_ports:
                calls.landlock_allow_port(ruleset, port, NET_RIGHTS["connect_tcp"][0])
        calls.landlock_restrict_self(ruleset)
    except OSError as exc:
        raise SandboxError(f"Landlock v{abi} is available but could not be applied "
                           f"({exc.strerror}); refusing to run unconfined.") from None
    finally:
        os.close(ruleset)
    return {"fs_rights": fs_names, "net_rights": net_names, "scopes": scope_names,
            "missing": tuple(missing), "connect_ports": c.connect_ports if net_mask else ()}


def confine(c: Confinement) -> SandboxReport:
    """Confine this process to ``c`` for the rest of its life; say what applied.

    Call it once, while the process has one thread (Landlock, seccomp, no-new-privs and
    capabilities are per thread: a thread started earlier would stay free). Raises
    ``SandboxError`` if ``c`` names a path that does not exist, or the kernel has Landlock
    but refuses the ruleset; with no Landlock at all it applies the rest and reports
    ``none (why)``.
    """
    started = time.perf_counter()
    threads = _threads()
    if threads > 1:
        names = sorted(t.name for t in threading.enumerate())
        raise SandboxError(f"confine() must run while the process has one thread, found "
                           f"{threads} ({', '.join(names)}): call it before starting any.")
    for path in (*c.read_write, *((c.temp_dir,) if c.temp_dir else ())):
        if not path.exists():
            raise SandboxError(f"Confinement: {str(path)!r} does not exist; the host creates "
                               "the worker's storage prefix and temp dir before it starts.")
    closed = _close_inherited(c.keep_fds) if c.close_fds else 0
    calls = linux()
    if calls is None:
        return SandboxReport(landlock_abi=0, reason=f"not Linux: {sys.platform}",
                             seccomp_reason="not Linux", fds_closed=closed,
                             seconds=time.perf_counter() - started)
    abi, reason = calls.landlock_abi()
    calls.set_no_new_privs()
    calls.set_not_dumpable()
    applied: dict[str, Any] = _landlock(calls, abi, c) if abi else {}
    if c.seccomp:
        try:
            calls.install_seccomp()
            applied["seccomp"] = ("non-TCP sockets", "tcp fast open", *REFUSED,
                                  "other processes' limits", "syscalls newer than Linux 6.6")
        except OSError as exc:
            applied["seccomp_reason"] = exc.strerror
    dropped = None
    if c.drop_capabilities:
        dropped = calls.capabilities()[0]
        calls.drop_capabilities()
    if c.temp_dir is not None:
        tempfile.tempdir = str(c.temp_dir)
        os.environ["TMPDIR"] = str(c.temp_dir)
    return SandboxReport(landlock_abi=abi, reason=reason, no_new_privs=True, not_dumpable=True,
                         fds_closed=closed, capabilities_dropped=dropped,
                         seconds=time.perf_counter() - started, **applied)


# --- the environment a worker starts with ------------------------------------------------

#: Copied from the host when set: locale and time zone, nothing that can hold a secret.
_PASSED = ("LANG", "LANGUAGE", "TZ")
_PASSED_PREFIX = "LC_"
#: Names that look like a secret: refused even when asked for by name.
_SECRET_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "SEED", "CREDENTIAL", "KEY", "AUTH")


def scrubbed_environment(keep: Iterable[str] = (), *, home: str | Path | None = None,
                         environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a worker starts with: locale, time zone, a plain PATH, and ``keep``.

    Nothing else of the host's environment reaches a worker (nor its ``/proc/<pid>/environ``):
    no credentials, no ``SIGNALPY_LAB_NATS_*``, no ``PYTHONPATH`` unless kept. Decided:

    * ``PATH=/usr/bin:/bin``: a confined worker executes nothing, but libraries look it up;
    * ``LANG``, ``LANGUAGE``, ``LC_*``, ``TZ`` from the host, so text and local time match;
    * ``PYTHONHASHSEED`` is **not** passed: each worker draws its own, so one tenant cannot
      learn the seed another's dicts use (hash flooding);
    * ``PYTHONNOUSERSITE=1`` (no ``~/.local`` packages the host never vetted) and
      ``PYTHONDONTWRITEBYTECODE=1`` (site-packages is read-only to a worker anyway);
    * ``HOME`` only if given (the worker's temp dir is a good one).

    A name in ``keep`` that looks like a secret (``*PASSWORD*``, ``*TOKEN*``, ``*KEY*``...)
    raises ``SandboxError``: secrets travel over the worker's stdin, never its environment.

    >>> sorted(scrubbed_environment(environ={"LANG": "C.UTF-8", "DB_PASSWORD": "x"}))
    ['LANG', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'PYTHONNOUSERSITE']
    """
    source = os.environ if environ is None else environ
    kept = list(keep)
    secret = sorted(n for n in kept if any(w in n.upper() for w in _SECRET_WORDS))
    if secret:
        raise SandboxError(f"scrubbed_environment(keep=...) refuses {', '.join(map(repr, secret))}:"
                           " a worker's environment is readable in /proc/<pid>/environ; send "
                           "secrets over its stdin.")
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    for name, value in source.items():
        if name in _PASSED or name.startswith(_PASSED_PREFIX) or name in kept:
            env[name] = value
    if home is not None:
        env["HOME"] = str(home)
    return env
