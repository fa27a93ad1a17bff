"""Confining the current process: what a worker may still reach once tenant code runs in it.

A worker calls ``confine()`` once, at start-up, while it has a single thread and before it
loads any tenant code::

    report = confine(Confinement.for_worker(storage=prefix, temp_dir=tmp, connect_ports=[4222]))
    print(f"sandbox: {report}")          # sandbox: landlock v7   |   sandbox: none (why)

and is started with ``env=scrubbed_environment()``. ``confine`` applies, in this order:

1. closes every inherited file descriptor except ``keep_fds`` (stdin, stdout, stderr): a
   descriptor opened before confinement is never checked again, whatever the rules say;
2. ``prctl(PR_SET_NO_NEW_PRIVS, 1)``: no ``execve`` can grant privileges again (and Landlock
   requires it);
3. ``prctl(PR_SET_DUMPABLE, 0)``: no core dumps, and ``/proc/<pid>/mem`` (and ``environ``,
   ``maps``, ...) of this process belong to root, so a sibling needs ``CAP_SYS_PTRACE``;
4. a Landlock ruleset (``landlock_restrict_self``), best effort for the kernel's ABI;
5. drops every capability (bounding set, ambient, effective, permitted, inheritable): these
   machines run workers as root, and Landlock alone leaves root's capabilities (load a kernel
   module, raw sockets, bpf, ``mknod``, reboot) untouched.

What a confined worker (``Confinement.for_worker``) may do:

* read, never write nor execute: Python (``sys.prefix``, ``sys.base_prefix``, the stdlib,
  site-packages, this package's folder), what the dynamic loader reads (``/usr``, ``/lib``,
  ``/lib64``, ``/etc/ld.so.cache``) and ``/etc/localtime``; read and write ``/dev/null``;
* read and write its own storage prefix and its private temp dir (``tempfile`` points there):
  create, rename, truncate and remove files and folders, but make no device node, FIFO,
  socket file or symlink;
* connect over TCP to the listed ports (the NATS server's), on any address;
* send signals to, and connect to abstract unix sockets of, its own processes only.

What it is refused (``EACCES``/``EPERM``), each refusal tested with hostile code in a real
confined child (``tests/remote/test_sandbox.py``): reading or listing anything else (another
tenant's folder, the server's config, ``/tmp``, ``/etc``, ``/proc`` entirely, so no
``/proc/<pid>/environ``, ``cmdline``, ``maps`` or ``mem`` of anyone), writing outside its
two folders, executing any program, TCP connect to any other port, binding or listening on
any TCP port, ``kill()`` of a process outside its domain (the host, a sibling worker), connect
to an abstract unix socket outside its domain, ptrace of anything outside it (Landlock, ABI 1),
and every capability-guarded call.

What it does **not** confine (Landlock ABI 7, measured on these machines): a path's metadata
(``stat``, so existence of a name it can guess), ``connect`` to a *named* unix socket at any
path it can name, UDP and other non-TCP protocols (``sendto`` any UDP port), CPU, memory and
process count (fork bombs: that is cgroups' work), and anything reachable through a
descriptor it was allowed to keep. A second OS user or a container closes those.

Where the OS has no Landlock (not Linux, a kernel before 5.13 or without it in ``lsm=``, a
seccomp filter refusing the syscalls as some container runtimes do), ``confine`` still
applies the rest and reports ``none (why)``: the worker runs, and the lab says so plainly.
On a kernel with an older ABI it handles only what that ABI knows (the kernel docs'
"best-effort" example) and the report names what is missing (``scopes need ABI 6``).

**The Landlock binding is this module's own ctypes layer**, about 120 lines below, over
``syscall(2)`` (444 ``landlock_create_ruleset``, 445 ``landlock_add_rule``, 446
``landlock_restrict_self``: one number on x86_64 and in the generic table that aarch64,
riscv64 and loongarch64 use; checked in ``asm/unistd_64.h`` and ``asm-generic/unistd.h``).
The PyPI ``landlock`` package (1.0.0.dev5, May 2025, alpha, one author) covers only the
filesystem: its ruleset attribute has no ``handled_access_net`` or ``scoped`` field, so no
TCP port rules (ABI 4) and no signal or abstract-socket scoping (ABI 6), which are two of the
three things a worker needs; it also decides failure from a stale ``errno`` rather than the
return value. The smaller bindings that do cover ABI 6 (``py-landlock`` 0.1.1,
``landlockpy`` 0.2.0) are months old, single-maintainer and little used: for a security
boundary, 120 readable lines checked against the kernel's UAPI header beat a dependency
nobody audits. No package is added.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
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

__all__ = [
    "Confinement",
    "SandboxReport",
    "confine",
    "landlock_abi",
    "python_read_paths",
    "scrubbed_environment",
]

# --- the kernel's ABI (include/uapi/linux/landlock.h) ----------------------------------

#: Syscall numbers by ``platform.machine()``; 444-446 in every table that has them.
_SYSCALLS = dict.fromkeys(("x86_64", "amd64", "aarch64", "arm64", "riscv64", "loongarch64"),
                          (444, 445, 446))
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2

#: Filesystem access rights, bit by bit, and the ABI that introduced each.
_FS_RIGHTS: dict[str, tuple[int, int]] = {
    "execute": (1 << 0, 1), "write_file": (1 << 1, 1), "read_file": (1 << 2, 1),
    "read_dir": (1 << 3, 1), "remove_dir": (1 << 4, 1), "remove_file": (1 << 5, 1),
    "make_char": (1 << 6, 1), "make_dir": (1 << 7, 1), "make_reg": (1 << 8, 1),
    "make_sock": (1 << 9, 1), "make_fifo": (1 << 10, 1), "make_block": (1 << 11, 1),
    "make_sym": (1 << 12, 1), "refer": (1 << 13, 2), "truncate": (1 << 14, 3),
    "ioctl_dev": (1 << 15, 5),
}
#: The rights a rule on a file (not a directory) may carry.
_FILE_RIGHTS = frozenset({"execute", "write_file", "read_file", "truncate", "ioctl_dev"})
_NET_RIGHTS: dict[str, tuple[int, int]] = {"bind_tcp": (1 << 0, 4), "connect_tcp": (1 << 1, 4)}
_SCOPES: dict[str, tuple[int, int]] = {"abstract_unix_socket": (1 << 0, 6), "signal": (1 << 1, 6)}
#: The newest ABI whose rights this module knows; a newer kernel gets these handled.
_KNOWN_ABI = 7

#: What a read-only path grants, and what a read-write one does. Nothing anywhere grants
#: execute, device nodes, FIFOs, socket files, symlinks or device ioctls.
_READ = ("read_file", "read_dir")
_READ_WRITE = ("read_file", "read_dir", "write_file", "truncate", "remove_dir", "remove_file",
               "make_dir", "make_reg", "refer")

# prctl(2) options.
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _RulesetAttr(ctypes.Structure):
    """``struct landlock_ruleset_attr`` as of ABI 6 (``scoped``); zeros past what a kernel knows."""

    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    """``struct landlock_path_beneath_attr``: packed, 12 bytes."""

    _pack_ = 1
    _layout_ = "ms"  # what _pack_ means; Python 3.14 warns when it is implicit
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    """``struct landlock_net_port_attr``: the port in host byte order."""

    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _Libc:
    """The few libc entry points used here, called with explicit C types (they are variadic)."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = self._libc.syscall
        self._syscall.restype = ctypes.c_long
        self._prctl = self._libc.prctl
        self._prctl.restype = ctypes.c_int

    def syscall(self, number: int, *args: Any) -> int:
        """``syscall(number, *args)``; raises ``OSError`` with the errno on -1."""
        result = int(self._syscall(ctypes.c_long(number), *args))
        if result == -1:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return result

    def prctl(self, option: int, arg2: int = 0) -> int:
        result = int(self._prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(0),
                                 ctypes.c_ulong(0), ctypes.c_ulong(0)))
        if result == -1:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl({option}): {os.strerror(err)}")
        return result

    def capabilities(self) -> int:
        """How many capabilities this thread holds (effective), from ``capget``."""
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        if self._libc.capget(ctypes.byref(header), data) == -1:
            return 0
        return sum(bin(d.effective).count("1") for d in data)

    def drop_capabilities(self) -> None:
        """Empty the bounding and ambient sets, then clear effective, permitted, inheritable."""
        for cap in range(64):  # up to the kernel's last capability: it says EINVAL past it
            try:
                self.prctl(_PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    break
                if exc.errno != errno.EPERM:  # EPERM: no CAP_SETPCAP, nothing held to drop
                    raise
        try:
            self.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
        except OSError:
            pass  # kernels before 4.3 have no ambient set
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        if self._libc.capset(ctypes.byref(header), data) == -1:
            err = ctypes.get_errno()
            raise OSError(err, f"capset: {os.strerror(err)}")


def _libc() -> _Libc | None:
    try:
        return _Libc()
    except (OSError, AttributeError):
        return None


def _landlock_probe(libc: _Libc | None) -> tuple[int, str | None]:
    """The kernel's Landlock ABI version, or 0 and why there is none."""
    if not sys.platform.startswith("linux"):
        return 0, f"not Linux: {sys.platform}"
    if libc is None:
        return 0, "no C library reachable through ctypes"
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        return 0, f"Landlock syscall numbers unknown for {platform.machine()!r}"
    try:
        return libc.syscall(numbers[0], None, ctypes.c_size_t(0),
                            ctypes.c_uint32(_CREATE_RULESET_VERSION)), None
    except OSError as exc:
        why = {
            errno.ENOSYS: "kernel has no Landlock syscalls (before 5.13, or built without it)",
            errno.EOPNOTSUPP: "Landlock is disabled at boot (add 'landlock' to lsm=)",
            errno.EPERM: "a seccomp filter refused the Landlock syscalls (container runtime?)",
        }.get(exc.errno or 0, f"landlock_create_ruleset failed: {exc.strerror}")
        return 0, f"{why}; errno {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers (7 on these machines), 0 if none.

    >>> landlock_abi() >= 0
    True
    """
    return _landlock_probe(_libc())[0]


def _bits(table: dict[str, tuple[int, int]], abi: int, names: Iterable[str] | None = None,
          ) -> tuple[int, tuple[str, ...]]:
    """The mask of ``names`` (default all) that ``abi`` knows, and their names."""
    chosen = [n for n in (names if names is not None else table) if table[n][1] <= abi]
    mask = 0
    for name in chosen:
        mask |= table[name][0]
    return mask, tuple(chosen)


# --- what to confine to ------------------------------------------------------------------


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
            net = ("+".join(r.removesuffix("_tcp") for r in self.net_rights) or "none")
            ports = ",".join(map(str, self.connect_ports)) or "none"
            parts.append(f"fs {len(self.fs_rights)} rights, tcp {net} (connect to {ports}), "
                         f"scoped {'+'.join(self.scopes) or 'nothing'}")
            if self.missing:
                parts.append("missing " + "; ".join(self.missing))
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
                "missing": list(self.missing), "no_new_privs": self.no_new_privs,
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
        open_fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    except OSError:  # no /proc (not Linux): every number up to the limit that is open
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
    for fd in open_fds:
        if fd in kept:
            continue
        try:
            os.close(fd)
            closed += 1
        except OSError:
            pass  # the listing's own descriptor, already gone
    return closed


def _add_path_rules(libc: _Libc, add_rule: int, ruleset: int, paths: Iterable[Path],
                    names: tuple[str, ...], abi: int, field_name: str) -> None:
    for path in paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError as exc:
            raise SandboxError(
                f"Confinement.{field_name}: cannot open {str(path)!r} ({exc.strerror}); "
                "create it before confine() or leave it out.") from None
        try:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            allowed, _ = _bits(_FS_RIGHTS, abi,
                               names if is_dir else [n for n in names if n in _FILE_RIGHTS])
            rule = _PathBeneathAttr(allowed, fd)
            libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                         ctypes.byref(rule), ctypes.c_uint32(0))
        except OSError as exc:
            raise SandboxError(f"Landlock refused a rule for {str(path)!r}: {exc.strerror}.") \
                from None
        finally:
            os.close(fd)


def _landlock(libc: _Libc, abi: int, c: Confinement) -> dict[str, Any]:
    """Build the ruleset for what ``abi`` knows and restrict this thread to it."""
    create, add_rule, restrict = _SYSCALLS[platform.machine()]
    known = min(abi, _KNOWN_ABI)
    fs_mask, fs_names = _bits(_FS_RIGHTS, known)
    net_mask, net_names = _bits(_NET_RIGHTS, known)
    wanted_scopes = [n for n, on in (("signal", c.scope_signals),
                                     ("abstract_unix_socket", c.scope_abstract_sockets)) if on]
    scope_mask, scope_names = _bits(_SCOPES, known, wanted_scopes)
    missing = []
    if not net_mask:
        missing.append("tcp bind/connect rules need ABI 4")
    if wanted_scopes and not scope_mask:
        missing.append("signal and abstract-socket scoping need ABI 6")
    attr = _RulesetAttr(fs_mask, net_mask, scope_mask)
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                           ctypes.c_uint32(0))
    try:
        _add_path_rules(libc, add_rule, ruleset, c.read_only, _READ, known, "read_only")
        rw = c.read_write + ((c.temp_dir,) if c.temp_dir is not None else ())
        _add_path_rules(libc, add_rule, ruleset, rw, _READ_WRITE, known, "read_write")
        if net_mask:
            connect = _NET_RIGHTS["connect_tcp"][0]
            for port in c.connect_ports:
                rule = _NetPortAttr(connect, port)
                libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(_RULE_NET_PORT),
                             ctypes.byref(rule), ctypes.c_uint32(0))
        libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    except OSError as exc:
        raise SandboxError(f"Landlock v{abi} is available but could not be applied: "
                           f"{exc.strerror}; refusing to run unconfined.") from None
    finally:
        os.close(ruleset)
    return {"fs_rights": fs_names, "net_rights": net_names, "scopes": scope_names,
            "missing": tuple(missing),
            "connect_ports": c.connect_ports if net_mask else ()}


def confine(c: Confinement) -> SandboxReport:
    """Confine this process to ``c`` for the rest of its life; say what applied.

    Call it once, while the process has one thread (Landlock, no-new-privs and capabilities
    are per thread: a thread started earlier would stay free). Raises ``SandboxError`` if
    ``c`` names a path that does not exist or the kernel has Landlock but refuses the
    ruleset; with no Landlock at all it applies the rest and reports ``none (why)``.
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
    libc = _libc()
    abi, reason = _landlock_probe(libc)
    no_new_privs = not_dumpable = False
    if libc is not None and sys.platform.startswith("linux"):
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1)
        no_new_privs = True
        libc.prctl(_PR_SET_DUMPABLE, 0)
        not_dumpable = True
    applied: dict[str, Any] = {}
    if abi and libc is not None:
        applied = _landlock(libc, abi, c)
    dropped = None
    if c.drop_capabilities and libc is not None and sys.platform.startswith("linux"):
        dropped = libc.capabilities()
        libc.drop_capabilities()
    if c.temp_dir is not None:
        tempfile.tempdir = str(c.temp_dir)
        os.environ["TMPDIR"] = str(c.temp_dir)
    return SandboxReport(landlock_abi=abi, reason=reason, no_new_privs=no_new_privs,
                         not_dumpable=not_dumpable, fds_closed=closed,
                         capabilities_dropped=dropped,
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
