"""Linux's confinement interfaces spelled in ctypes: Landlock, seccomp, prctl, capabilities.

Only the kernel's ABI lives here (numbers, structs, one classic-BPF program); what a worker
may reach, and why, is ``sandbox.py``'s. Sources: ``include/uapi/linux/landlock.h``,
``linux/seccomp.h``, ``linux/filter.h``, ``linux/prctl.h``, ``linux/capability.h``,
``linux/audit.h``, and the syscall tables ``asm/unistd_64.h`` (x86_64) and
``asm-generic/unistd.h`` (aarch64, riscv64, loongarch64). Every libc function used here is
variadic or untyped (``syscall``, ``prctl``), so every argument is passed with an explicit C
type: a bare Python int would go as a 32-bit ``int`` with whatever sits in the upper half.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "FILE_RIGHTS", "FS_RIGHTS", "KNOWN_ABI", "MACHINES", "NET_RIGHTS", "REFUSED", "SCOPES",
    "Linux", "bits", "linux", "seccomp_program",
]

# --- syscall numbers ---------------------------------------------------------------------

_X86_64 = {"landlock_create_ruleset": 444, "landlock_add_rule": 445,
           "landlock_restrict_self": 446, "socket": 41, "sendto": 44, "sendmsg": 46,
           "listen": 50, "sendmmsg": 307, "io_uring_setup": 425, "io_uring_enter": 426,
           "io_uring_register": 427, "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67,
           "semget": 64, "semop": 65, "semctl": 66, "semtimedop": 220, "msgget": 68,
           "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "add_key": 248, "request_key": 249,
           "keyctl": 250, "chmod": 90, "fchmodat": 268, "fchmodat2": 452, "chown": 92,
           "lchown": 94, "fchownat": 260, "utime": 132, "utimes": 235, "futimesat": 261,
           "utimensat": 280, "setxattr": 188, "lsetxattr": 189, "removexattr": 197,
           "lremovexattr": 198, "inotify_add_watch": 254, "prlimit64": 302}
_GENERIC = {"landlock_create_ruleset": 444, "landlock_add_rule": 445,
            "landlock_restrict_self": 446, "socket": 198, "sendto": 206, "sendmsg": 211,
            "listen": 201, "sendmmsg": 269, "io_uring_setup": 425, "io_uring_enter": 426,
            "io_uring_register": 427, "shmget": 194, "shmat": 196, "shmctl": 195, "shmdt": 197,
            "semget": 190, "semop": 193, "semctl": 191, "semtimedop": 192, "msgget": 186,
            "msgsnd": 189, "msgrcv": 188, "msgctl": 187, "add_key": 217, "request_key": 218,
            "keyctl": 219, "fchmodat": 53, "fchmodat2": 452, "fchownat": 54, "utimensat": 88,
            "setxattr": 5, "lsetxattr": 6, "removexattr": 14, "lremovexattr": 15,
            "inotify_add_watch": 27, "prlimit64": 261}
#: Numbers from here on are newer than this filter (452, fchmodat2, is Linux 6.6's; they are
#: one table for every architecture since 424): ENOSYS, so libc falls back to an older call.
_FIRST_UNKNOWN = 453
#: ``platform.machine()`` -> (the AUDIT_ARCH a seccomp filter checks, syscall numbers).
MACHINES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, _X86_64), "aarch64": (0xC00000B7, _GENERIC),
    "riscv64": (0xC00000F3, _GENERIC), "loongarch64": (0xC0000102, _GENERIC),
}

# --- Landlock ------------------------------------------------------------------------------

#: Filesystem access rights: bit, and the ABI that introduced it.
FS_RIGHTS: dict[str, tuple[int, int]] = {
    "execute": (1 << 0, 1), "write_file": (1 << 1, 1), "read_file": (1 << 2, 1),
    "read_dir": (1 << 3, 1), "remove_dir": (1 << 4, 1), "remove_file": (1 << 5, 1),
    "make_char": (1 << 6, 1), "make_dir": (1 << 7, 1), "make_reg": (1 << 8, 1),
    "make_sock": (1 << 9, 1), "make_fifo": (1 << 10, 1), "make_block": (1 << 11, 1),
    "make_sym": (1 << 12, 1), "refer": (1 << 13, 2), "truncate": (1 << 14, 3),
    "ioctl_dev": (1 << 15, 5),
}
#: The rights a rule on a file (not a directory) may carry; others make it EINVAL.
FILE_RIGHTS = frozenset({"execute", "write_file", "read_file", "truncate", "ioctl_dev"})
NET_RIGHTS: dict[str, tuple[int, int]] = {"bind_tcp": (1 << 0, 4), "connect_tcp": (1 << 1, 4)}
SCOPES: dict[str, tuple[int, int]] = {"abstract_unix_socket": (1 << 0, 6), "signal": (1 << 1, 6)}
#: The newest ABI whose rights are listed above; a newer kernel gets these handled (ABI 7
#: added only audit-logging flags to restrict_self, whose defaults are kept).
KNOWN_ABI = 7
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2


def bits(table: dict[str, tuple[int, int]], abi: int, names: Iterable[str] | None = None,
         ) -> tuple[int, tuple[str, ...]]:
    """The mask of ``names`` (default: all of ``table``) that ``abi`` knows, and those names."""
    chosen = tuple(n for n in (table if names is None else names) if table[n][1] <= abi)
    mask = 0
    for name in chosen:
        mask |= table[name][0]
    return mask, chosen


class _RulesetAttr(ctypes.Structure):
    """``struct landlock_ruleset_attr`` up to ABI 6 (``scoped``); older kernels accept the
    larger size as long as the fields they do not know are zero."""

    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    """``struct landlock_path_beneath_attr``: packed, 12 bytes."""

    _pack_ = 1
    _layout_ = "ms"  # what _pack_ means; Python 3.14 warns when it is left implicit
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    """``struct landlock_net_port_attr``: the port in host byte order."""

    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


# --- seccomp (classic BPF) ---------------------------------------------------------------

# Load a 32-bit word of struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6]}
# (little-endian: argument i's low half is at 16 + 8*i), compare, jump, return.
_LD, _JEQ, _JGE, _JSET, _AND, _RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
_ALLOW, _EPERM, _ENOSYS = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
_MSG_FASTOPEN = 0x20000000
_AF_INET, _AF_INET6, _SOCK_STREAM, _IPPROTO_TCP = 2, 10, 1, 6
#: Syscalls refused outright, by what they would reach.
REFUSED: dict[str, tuple[str, ...]] = {
    "listen": ("listen",),  # on an unbound socket it binds a port without Landlock's bind hook
    "io_uring": ("io_uring_setup", "io_uring_enter", "io_uring_register"),  # ops skip seccomp
    "sysv ipc": ("shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl",
                 "semtimedop", "msgget", "msgsnd", "msgrcv", "msgctl"),  # host-wide, by number
    "keyrings": ("add_key", "request_key", "keyctl"),  # root's user keyring is the host's
    # Landlock v7 does not check these, and a worker runs as the owner of the host's files:
    # chmod u+s /usr/bin/python3 would make every local user root.
    "file metadata by path": ("chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat",
                              "utime", "utimes", "futimesat", "utimensat", "setxattr",
                              "lsetxattr", "removexattr", "lremovexattr"),
    "inotify": ("inotify_add_watch",),  # would watch another tenant's folder for activity
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(arch: int, nr: dict[str, int]) -> list[tuple[int, int, int, int]]:
    """The filter, as ``(code, jt, jf, k)``: EPERM for another architecture, x32 and
    ``REFUSED``; ``socket()`` only TCP over IPv4/IPv6; no ``send*`` with ``MSG_FASTOPEN``
    (a connect Landlock v7 does not see); ``prlimit64`` only on itself (same-user limits of
    the host or a sibling: RLIMIT_NOFILE 0); ENOSYS for syscalls newer than the filter.
    Everything else is allowed."""
    code: list[tuple[int, int, str | None, str | None]] = []
    labels: dict[str, int] = {}

    def op(instr: int, k: int = 0, jt: str | None = None, jf: str | None = None) -> None:
        code.append((instr, k, jt, jf))

    op(_LD, 4)
    op(_JEQ, arch, None, "deny")
    op(_LD, 0)
    if arch == MACHINES["x86_64"][0]:
        op(_JGE, 0x40000000, "deny")  # the x32 ABI's numbers
    op(_JGE, _FIRST_UNKNOWN, "unknown")
    for names in REFUSED.values():
        for name in names:
            if name in nr:  # the generic table has only the *at forms
                op(_JEQ, nr[name], "deny")
    op(_JEQ, nr["prlimit64"], "self")
    op(_JEQ, nr["socket"], "socket")
    op(_JEQ, nr["sendto"], "flags3")
    op(_JEQ, nr["sendmmsg"], "flags3")
    op(_JEQ, nr["sendmsg"], "flags2")
    op(_RET, _ALLOW)
    labels["socket"] = len(code)
    op(_LD, 16)                                   # domain
    op(_JEQ, _AF_INET, "type")
    op(_JEQ, _AF_INET6, "type", "deny")
    labels["type"] = len(code)
    op(_LD, 24)                                   # type
    op(_AND, 0xF)                                 # SOCK_TYPE_MASK: drop NONBLOCK / CLOEXEC
    op(_JEQ, _SOCK_STREAM, None, "deny")
    op(_LD, 32)                                   # protocol: 0 or TCP, never MPTCP
    op(_JEQ, 0, "allow")
    op(_JEQ, _IPPROTO_TCP, "allow", "deny")
    labels["flags3"] = len(code)                  # sendto / sendmmsg: flags are args[3]
    op(_LD, 40)
    op(_JSET, _MSG_FASTOPEN, "deny", "allow")
    labels["flags2"] = len(code)                  # sendmsg: flags are args[2]
    op(_LD, 32)
    op(_JSET, _MSG_FASTOPEN, "deny", "allow")
    labels["self"] = len(code)                    # prlimit64: pid is args[0], 0 is itself
    op(_LD, 16)
    op(_JEQ, 0, "allow", "deny")
    labels["allow"] = len(code)
    op(_RET, _ALLOW)
    labels["deny"] = len(code)
    op(_RET, _EPERM)
    labels["unknown"] = len(code)
    op(_RET, _ENOSYS)
    return [(instr, labels[jt] - i - 1 if jt else 0, labels[jf] - i - 1 if jf else 0, k)
            for i, (instr, k, jt, jf) in enumerate(code)]


# --- prctl and capabilities ----------------------------------------------------------------

_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_PR_CAPBSET_READ, _PR_CAPBSET_DROP = 23, 24
_PR_SET_NO_NEW_PRIVS, _PR_GET_NO_NEW_PRIVS = 38, 39
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class Linux:
    """The calls ``confine`` makes, each raising ``OSError`` (with the errno) on failure."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = self._libc.syscall
        self._syscall.restype = ctypes.c_long
        self._prctl = self._libc.prctl
        self._prctl.restype = ctypes.c_int
        self.machine = platform.machine()
        self.arch, self.nr = MACHINES.get(self.machine, (0, {}))

    def _check(self, result: int, what: str) -> int:
        if result == -1:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return result

    def syscall(self, name: str, *args: Any) -> int:
        return self._check(int(self._syscall(ctypes.c_long(self.nr[name]), *args)), name)

    def prctl(self, option: int, arg2: int = 0, arg3: Any = 0) -> int:
        arg3 = ctypes.c_ulong(arg3) if isinstance(arg3, int) else arg3  # or a byref(...)
        return self._check(int(self._prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), arg3,
                                           ctypes.c_ulong(0), ctypes.c_ulong(0))),
                           f"prctl({option})")

    # Landlock
    def landlock_abi(self) -> tuple[int, str | None]:
        """The kernel's Landlock ABI version, or 0 and why there is none."""
        if not self.nr:
            return 0, f"Landlock syscall numbers unknown for {self.machine!r}"
        try:
            return self.syscall("landlock_create_ruleset", None, ctypes.c_size_t(0),
                                ctypes.c_uint32(_CREATE_RULESET_VERSION)), None
        except OSError as exc:
            why = {
                errno.ENOSYS: "kernel has no Landlock syscalls (before 5.13, or built without)",
                errno.EOPNOTSUPP: "Landlock is disabled at boot (add 'landlock' to lsm=)",
                errno.EPERM: "a seccomp filter refused the Landlock syscalls (a container?)",
            }.get(exc.errno or 0, f"landlock_create_ruleset failed: {exc.strerror}")
            return 0, f"{why}; errno {errno.errorcode.get(exc.errno or 0, exc.errno)}"

    def landlock_ruleset(self, fs: int, net: int, scoped: int) -> int:
        attr = _RulesetAttr(fs, net, scoped)
        return self.syscall("landlock_create_ruleset", ctypes.byref(attr),
                            ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))

    def landlock_allow_path(self, ruleset: int, fd: int, allowed: int) -> None:
        rule = _PathBeneathAttr(allowed, fd)
        self.syscall("landlock_add_rule", ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                     ctypes.byref(rule), ctypes.c_uint32(0))

    def landlock_allow_port(self, ruleset: int, port: int, allowed: int) -> None:
        rule = _NetPortAttr(allowed, port)
        self.syscall("landlock_add_rule", ctypes.c_int(ruleset), ctypes.c_int(_RULE_NET_PORT),
                     ctypes.byref(rule), ctypes.c_uint32(0))

    def landlock_restrict_self(self, ruleset: int) -> None:
        self.syscall("landlock_restrict_self", ctypes.c_int(ruleset), ctypes.c_uint32(0))

    # seccomp
    def install_seccomp(self, program: list[tuple[int, int, int, int]] | None = None) -> None:
        """Install ``program`` (default ``seccomp_program``) on this thread; no-new-privs first."""
        if program is None:
            if not self.arch or sys.byteorder != "little":
                raise OSError(errno.ENOSYS, f"no seccomp filter written for {self.machine!r}")
            program = seccomp_program(self.arch, self.nr)
        filters = (_SockFilter * len(program))(*(_SockFilter(*i) for i in program))
        self.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER,
                   ctypes.byref(_SockFprog(len(program), filters)))

    # process attributes
    def set_no_new_privs(self) -> None:
        self.prctl(_PR_SET_NO_NEW_PRIVS, 1)

    def set_not_dumpable(self) -> None:
        self.prctl(_PR_SET_DUMPABLE, 0)

    def no_new_privs(self) -> int:
        return self.prctl(_PR_GET_NO_NEW_PRIVS)

    def dumpable(self) -> int:
        return self.prctl(_PR_GET_DUMPABLE)

    def capabilities(self) -> tuple[int, int]:
        """How many capabilities this thread holds (effective) and has in its bounding set."""
        header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
        self._check(self._libc.capget(ctypes.byref(header), data), "capget")
        bounding = 0
        for cap in range(64):
            try:
                bounding += self.prctl(_PR_CAPBSET_READ, cap)
            except OSError:  # EINVAL past the kernel's last capability
                break
        return sum(bin(d.effective).count("1") for d in data), bounding

    def drop_capabilities(self) -> None:
        """Empty the bounding and ambient sets, then effective, permitted and inheritable."""
        for cap in range(64):
            try:
                self.prctl(_PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno == errno.EINVAL:  # past the kernel's last capability
                    break
                if exc.errno != errno.EPERM:  # EPERM: no CAP_SETPCAP, so none to drop
                    raise
        try:
            self.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
        except OSError:
            pass  # kernels before 4.3 have no ambient set
        header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
        self._check(self._libc.capset(ctypes.byref(header), data), "capset")


def linux() -> Linux | None:
    """The calls, or ``None`` where there is no Linux C library to make them through."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return Linux()
    except (OSError, AttributeError):
        return None
