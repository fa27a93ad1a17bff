"""The worker sandbox, tested as an attacker inside a worker: every reach refused, work still done.

Each run is a real child process (``hostile.py``) that confines itself the way a worker will
(``Confinement.for_worker``: its storage folder and temp dir, the NATS port) and then tries
every reach of issue 19 against a world this module builds::

    tmp/tenants/acme/            its own storage (read-write)
    tmp/tenants/globex/          another tenant's, with secret.txt
    tmp/tmp-acme/                its private temp dir
    tmp/server/host-file.txt     a file of the host's
    nats-server (module fixture) its config (public keys only) in its own temp dir
    127.0.0.1:<forbidden>        a TCP listener of the host's; a UDP socket too
    host.sock, @abstract         the host's named and abstract unix sockets
    sibling                      another process ("globex's worker")
    leaked fd                    the server config, open in the host, passed down

The same child also runs unconfined (``control``: every reach works, so none of the refusals
below is vacuous) and with one protection switched off at a time (``no seccomp``, ``no
scopes``...), which shows which rule does the refusing. Landlock assertions skip, naming the
ABI found, where the kernel has none; everything else runs on any Linux.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from signalpy_lab.errors import SandboxError
from signalpy_lab.remote import _linux, sandbox
from signalpy_lab.remote.sandbox import Confinement, SandboxReport, scrubbed_environment
from signalpy_lab.remote.server import NatsServer

LINUX = sys.platform.startswith("linux")
CALLS = _linux.linux()
ABI, WHY = CALLS.landlock_abi() if CALLS is not None else (0, f"not Linux: {sys.platform}")
HOSTILE = Path(__file__).with_name("hostile.py")
SECRET = "SIGNALPY_LAB_NATS_PASSWORD"

linux_only = pytest.mark.skipif(not LINUX, reason=f"confine() needs Linux, not {sys.platform}")


def needs_abi(version: int, what: str) -> pytest.MarkDecorator:
    """Skip a Landlock assertion on a kernel whose ABI is older than ``version``."""
    return pytest.mark.skipif(
        ABI < version, reason=f"{what} needs Landlock ABI {version}; this kernel's ABI is "
                              f"{ABI}{f' ({WHY})' if WHY else ''}")


def assert_ran_without_the_filter(outcome: str, reach: str) -> None:
    """With the seccomp filter off, a reach Landlock v7 does not cover got through on the
    kernel we measured (Linux 6.18); a later kernel may refuse it by Landlock alone, which is
    fine. What must not happen is that the probe itself broke: it reports "ok" or "refused"."""
    assert outcome in ("ok", "refused"), f"{reach}: {outcome}"


#: The runs: ``None`` stays unconfined, a dict changes fields of ``for_worker``'s Confinement.
VARIANTS: dict[str, dict[str, Any] | None] = {
    "control": None,
    "confined": {},
    "no seccomp": {"seccomp": False},
    "no scopes, no seccomp": {"scope_signals": False, "scope_abstract_sockets": False,
                              "seccomp": False},
    "fds kept": {"close_fds": False},
    "capabilities kept": {"drop_capabilities": False},
    "nothing readable": {"read_only": ()},
}


@dataclass
class Runs:
    """What each variant's child reported: ``reaches[variant][reach]`` and ``facts[variant]``."""

    reaches: dict[str, dict[str, str]]
    facts: dict[str, dict[str, Any]]

    def outcomes(self, reach: str, *variants: str) -> tuple[str, ...]:
        return tuple(self.reaches[v][reach] for v in variants)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer) -> Iterator[Runs]:
    """Build the world, run every variant of the hostile child in parallel, collect reports."""
    root = tmp_path_factory.mktemp("sandbox")
    tenants = root / "tenants"
    own, other, tmp, server = tenants / "acme", tenants / "globex", root / "tmp-acme", \
        root / "server"
    for folder in (own, other, tmp, server):
        folder.mkdir(parents=True)
    (other / "secret.txt").write_text("globex's db password")
    host_file = server / "host-file.txt"
    host_file.write_text("the host's")
    host_file.chmod(0o600)
    forbidden = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    named = socket.socket(socket.AF_UNIX)
    named.bind(str(server / "host.sock"))
    named.listen()
    abstract_name = f"spl-test-host-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0" + abstract_name)
    abstract.listen()
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    config = nats_server._config_path
    leaked = os.open(config, os.O_RDONLY)
    world = {"tenants": str(tenants), "own": str(own), "other": str(other), "tmp": str(tmp),
             "host_file": str(host_file), "server_config": str(config), "leaked_fd": leaked,
             "forbidden_port": forbidden.getsockname()[1], "udp_port": udp.getsockname()[1],
             "named_socket": str(server / "host.sock"), "abstract_socket": abstract_name,
             "sibling": sibling.pid,
             "nats": {"url": nats_server.url, "port": nats_server.port, "pid": nats_server.pid,
                      "seed": nats_server.admin_seed}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SECRET, "the admin password")  # a host secret a worker must never inherit
        children = {}
        for variant, change in VARIANTS.items():
            env = dict(os.environ) if change is None else scrubbed_environment(home=tmp)
            child = subprocess.Popen(
                [sys.executable, str(HOSTILE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, pass_fds=(leaked,), env=env, cwd=root, text=True)
            assert child.stdin is not None
            child.stdin.write(json.dumps({**world, "variant": variant.replace(" ", "-")
                                          .replace(",", ""), "confine": change}) + "\n")
            child.stdin.flush()
            children[variant] = child
        reaches, facts = {}, {}
        for variant, child in children.items():
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, f"{variant}: {err}"
            report = json.loads(out)
            reaches[variant], facts[variant] = report["reaches"], report["facts"]
    try:
        yield Runs(reaches, facts)
    finally:
        sibling.kill()
        sibling.wait()
        os.close(leaked)
        for s in (forbidden, udp, named, abstract):
            s.close()


# --- what still works ----------------------------------------------------------------------


@linux_only
def test_the_report_says_landlock_and_its_version(runs: Runs) -> None:
    """The lab's one word is ``landlock v<ABI>``, or ``none (why)`` on a kernel without it."""
    report = runs.facts["confined"]["report"]
    assert (f"landlock v{ABI}" if ABI else f"none ({WHY})") == report["sandbox"]
    assert report["description"].startswith(report["sandbox"])
    assert (True, True) == (report["no_new_privs"], report["not_dumpable"])


@linux_only
def test_its_own_storage_and_temp_dir_still_work(runs: Runs) -> None:
    """Acme's worker writes and reads its own folder and makes files in its private temp dir."""
    for reach in ("write own storage", "read own storage", "temp file in private temp dir"):
        assert ("ok", "ok") == runs.outcomes(reach, "control", "confined"), reach
    assert "tmp-acme" == Path(runs.facts["confined"]["tempdir"]).name


@linux_only
def test_imports_and_nats_still_work(runs: Runs) -> None:
    """Stdlib (json, decimal, sqlite3's C library) and site-packages (pydantic, nats) import
    after confinement, and a NATS request/reply round trip works; not without the read rule."""
    assert [] == runs.facts["confined"]["preloaded"][1:]  # json only: hostile.py read stdin
    for reach in ("import json", "import decimal", "import sqlite3", "import pydantic",
                  "import nats", "nats request/reply"):
        assert ("ok", "ok") == runs.outcomes(reach, "control", "confined"), reach
    if ABI:
        assert "refused" == runs.reaches["nothing readable"]["import decimal"]


# --- the filesystem --------------------------------------------------------------------------


@needs_abi(1, "filesystem rules")
def test_another_tenants_folder_is_refused(runs: Runs) -> None:
    """It can neither read globex's file, write into globex's folder, nor list its neighbours."""
    for reach in ("read another tenant's file", "write into another tenant's folder",
                  "list the tenants' folder"):
        assert ("ok", "refused") == runs.outcomes(reach, "control", "confined"), reach


@needs_abi(1, "filesystem rules")
def test_the_servers_config_and_the_hosts_files_are_refused(runs: Runs) -> None:
    """The nats-server's config (every password), ``/etc`` and a listing of ``/tmp`` are out of
    reach, and no program can be executed."""
    for reach in ("read the server's config", "read /etc/passwd", "list /tmp",
                  "execute a program"):
        assert ("ok", "refused") == runs.outcomes(reach, "control", "confined"), reach


@needs_abi(1, "filesystem rules")
def test_proc_of_the_host_and_the_server_is_refused(runs: Runs) -> None:
    """The host's ``/proc/<pid>/environ``, ``cmdline``, ``maps`` and ``mem``, and the server's
    ``cmdline`` (which names its config), are refused."""
    for reach in ("read the host's /proc environ", "read the host's /proc cmdline",
                  "read the host's /proc maps", "read the host's memory",
                  "read the nats-server's /proc cmdline"):
        assert ("ok", "refused") == runs.outcomes(reach, "control", "confined"), reach


@linux_only
def test_a_descriptor_the_host_leaked_is_closed(runs: Runs) -> None:
    """A descriptor inherited from the host (the server config, open) is closed before tenant
    code runs; with ``close_fds=False`` it would still read, Landlock or not."""
    assert ("ok", "OSError: EBADF", "ok") == runs.outcomes(
        "read a descriptor the host leaked", "control", "confined", "fds kept")


@linux_only
def test_file_metadata_of_the_host_cannot_be_changed(runs: Runs) -> None:
    """chmod, utime and xattrs of a host file, which Landlock v7 does not check, are refused by
    the seccomp filter, and so is watching another tenant's folder with inotify."""
    for reach in ("chmod a host file", "change a host file's times",
                  "set an xattr on a host file", "watch another tenant's folder"):
        control, confined, landlock_only = runs.outcomes(reach, "control", "confined",
                                                         "no seccomp")
        assert "refused" == confined, reach
        if control == "ok":  # xattrs, say, may be unsupported by the filesystem at all
            assert_ran_without_the_filter(landlock_only, reach)


# --- the network ---------------------------------------------------------------------------


@needs_abi(4, "TCP port rules")
def test_tcp_connects_only_to_the_nats_port(runs: Runs) -> None:
    """A connect to the NATS port works; to the host's other listener it is refused, over IPv4
    and IPv4-mapped IPv6 alike."""
    assert ("ok", "ok") == runs.outcomes("tcp connect to the nats port", "control", "confined")
    for reach in ("tcp connect to another port", "tcp connect to another port, IPv6-mapped"):
        assert ("ok", "refused") == runs.outcomes(reach, "control", "confined"), reach


@needs_abi(4, "TCP port rules")
def test_no_port_can_be_bound_or_listened_on(runs: Runs) -> None:
    """bind() is refused by Landlock; listen() on an unbound socket, which binds a port
    without Landlock's hook, by the seccomp filter."""
    assert ("ok", "refused", "refused") == runs.outcomes("tcp bind", "control", "confined",
                                                         "no seccomp")
    assert ("ok", "refused") == runs.outcomes("tcp listen without bind", "control", "confined")
    assert_ran_without_the_filter(runs.reaches["no seccomp"]["tcp listen without bind"],
                                  "tcp listen without bind")


@linux_only
def test_the_seccomp_filter_closes_the_ways_around_the_tcp_rules(runs: Runs) -> None:
    """TCP fast open and MPTCP to a refused port, UDP, and the host's named unix socket are
    refused; on Landlock v7 alone (measured on Linux 6.18) each of them gets through."""
    for reach in ("tcp fast open to another port", "mptcp connect to another port", "udp send",
                  "connect the host's named unix socket"):
        control, confined, landlock_only = runs.outcomes(reach, "control", "confined",
                                                         "no seccomp")
        assert ("ok", "refused") == (control, confined), reach
        assert_ran_without_the_filter(landlock_only, reach)


# --- other processes -----------------------------------------------------------------------


@needs_abi(6, "signal scoping")
def test_signals_reach_only_the_worker_itself(runs: Runs) -> None:
    """``kill(host, 0)`` and SIGSTOP to a sibling worker are refused, its own signals are not;
    without the signal scope both would go through."""
    assert ("ok", "ok") == runs.outcomes("signal 0 to itself", "control", "confined")
    for reach in ("signal 0 to the host", "SIGSTOP a sibling worker"):
        assert ("ok", "refused", "ok") == runs.outcomes(
            reach, "control", "confined", "no scopes, no seccomp"), reach


@needs_abi(6, "abstract unix socket scoping")
def test_the_hosts_abstract_unix_socket_is_refused(runs: Runs) -> None:
    """Connecting to the host's abstract unix socket is refused by the Landlock scope alone
    (seccomp off), and goes through with the scope off as well."""
    assert ("ok", "refused", "refused", "ok") == runs.outcomes(
        "connect the host's abstract unix socket", "control", "confined", "no seccomp",
        "no scopes, no seccomp")


@linux_only
def test_host_wide_ipc_keyrings_and_limits_are_refused(runs: Runs) -> None:
    """System V shared memory, root's user keyring and a sibling's resource limits (which
    Landlock does not cover) are refused by the seccomp filter."""
    for reach in ("System V shared memory", "read the user keyring",
                  "set a sibling's open-file limit"):
        assert ("ok", "refused", "ok") == runs.outcomes(reach, "control", "confined",
                                                        "no seccomp"), reach


# --- the process itself -----------------------------------------------------------------------


@linux_only
def test_not_dumpable_and_no_new_privileges(runs: Runs) -> None:
    """After confinement ``PR_GET_DUMPABLE`` is 0 and ``PR_GET_NO_NEW_PRIVS`` is 1."""
    control, confined = runs.facts["control"], runs.facts["confined"]
    assert (1, 0) == (control["dumpable"], control["no_new_privs"])
    assert (0, 1) == (confined["dumpable"], confined["no_new_privs"])


@linux_only
def test_root_keeps_no_capability(runs: Runs) -> None:
    """A worker started as root holds no capability, effective or in its bounding set, so
    chown to another user is refused; with capabilities kept it would work."""
    assert [0, 0] == runs.facts["confined"]["capabilities"]
    assert "refused" == runs.reaches["confined"]["chown its own file (CAP_CHOWN)"]
    if os.geteuid() == 0:
        assert runs.facts["control"]["capabilities"][0] > 0
        assert "ok" == runs.reaches["capabilities kept"]["chown its own file (CAP_CHOWN)"]


@linux_only
def test_the_environment_holds_no_host_secret(runs: Runs) -> None:
    """A worker started with ``scrubbed_environment()`` never sees the host's
    ``SIGNALPY_LAB_NATS_PASSWORD``; an unscrubbed child would."""
    assert SECRET in runs.facts["control"]["environment"]
    assert SECRET not in runs.facts["confined"]["environment"]


@linux_only
def test_confine_refuses_a_process_with_threads() -> None:
    """Landlock, seccomp and capabilities are per thread, so confine() with a second thread
    running raises instead of leaving that thread free."""
    code = ("import threading, time\n"
            "from signalpy_lab.remote.sandbox import Confinement, confine\n"
            "threading.Thread(target=time.sleep, args=(5,), daemon=True, name='relay').start()\n"
            "try:\n    confine(Confinement())\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.startswith("SandboxError confine() must run while the process has one thread,")
    assert "relay" in out


@linux_only
@pytest.mark.parametrize(("err", "why"), [
    ("ENOSYS", "kernel has no Landlock syscalls"),
    ("EPERM", "a seccomp filter refused the Landlock syscalls"),
])
def test_without_landlock_the_worker_runs_and_says_none(err: str, why: str) -> None:
    """Where the kernel has no Landlock, or a container's seccomp refuses its syscalls (made
    real here with a filter that answers them ``err``), confine() still applies the rest and
    reports ``none (why)``."""
    code = f"""
import errno
from signalpy_lab.remote import _linux
from signalpy_lab.remote.sandbox import Confinement, confine
calls = _linux.linux()
calls.set_no_new_privs()
refuse = 0x00050000 | errno.{err}
calls.install_seccomp([(0x20, 0, 0, 0), (0x35, 0, 1, 444), (0x06, 0, 0, refuse),
                       (0x06, 0, 0, 0x7FFF0000)])   # every syscall from 444 on: {err}
report = confine(Confinement())
print(report)
print(report.describe())
print(calls.dumpable(), calls.no_new_privs(), calls.capabilities()[0])
"""
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, check=True).stdout.splitlines()
    assert lines[0].startswith(f"none ({why}")
    assert lines[0].endswith(f"errno {err})")
    assert "not dumpable" in lines[1]
    assert "0 1 0" == lines[2]


# --- pieces, in process -------------------------------------------------------------------


def test_scrubbed_environment_keeps_locale_and_time_zone_only() -> None:
    """Locale, time zone and a plain PATH pass; secrets, PYTHONPATH and PYTHONHASHSEED do not."""
    host = {"LANG": "C.UTF-8", "LC_ALL": "de_DE.UTF-8", "TZ": "Europe/Berlin", "PATH": "/opt/x",
            SECRET: "pw", "AWS_SECRET_ACCESS_KEY": "k", "PYTHONPATH": "/src",
            "PYTHONHASHSEED": "0", "HOME": "/root"}
    assert {"LANG": "C.UTF-8", "LC_ALL": "de_DE.UTF-8", "TZ": "Europe/Berlin",
            "PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": "/w/tmp"} == scrubbed_environment(environ=host, home="/w/tmp")
    assert "/src" == scrubbed_environment(["PYTHONPATH"], environ=host)["PYTHONPATH"]


def test_scrubbed_environment_refuses_to_keep_a_secret() -> None:
    """Asking to keep a secret-looking variable is a one-line error saying where secrets go."""
    with pytest.raises(SandboxError, match=r"refuses 'SIGNALPY_LAB_NATS_PASSWORD': .* stdin"):
        scrubbed_environment([SECRET])


def test_a_confinement_says_what_is_wrong() -> None:
    """A port out of range, or one path where a sequence belongs, is a teaching error."""
    with pytest.raises(SandboxError, match=r"TCP ports 1-65535, got \[0\]"):
        Confinement(connect_ports=(0,))
    with pytest.raises(SandboxError, match=r"got one path '/srv'; write \('/srv',\)"):
        Confinement(read_write="/srv")  # type: ignore[arg-type]


def test_python_read_paths_cover_python_and_nothing_of_the_host() -> None:
    """The read-only defaults hold the interpreter's prefixes and stdlib, never /tmp, /etc,
    /proc, /home or the current directory."""
    paths = sandbox.python_read_paths()
    for needed in (sys.prefix, sys.base_prefix, os.path.dirname(os.__file__)):
        assert any(Path(needed).resolve().is_relative_to(p) for p in paths), needed
    for forbidden in ("/tmp", "/etc", "/proc", "/home", "/root", os.getcwd()):
        if not Path(sys.base_prefix).resolve().is_relative_to(forbidden):  # a Python there
            assert not any(Path(forbidden) == p or Path(forbidden).is_relative_to(p)
                           for p in paths), forbidden


def test_a_report_without_landlock_reads_none_and_why() -> None:
    """``str()`` is the lab's one word, ``describe()`` the one line for ``%instances``."""
    report = SandboxReport(landlock_abi=0, reason="not Linux: darwin", fds_closed=2,
                           seccomp_reason="not Linux")
    assert "none (not Linux: darwin)" == str(report)
    assert report.describe().startswith("none (not Linux: darwin); no seccomp filter (not Linux)")
    assert json.loads(json.dumps(report.to_dict()))["sandbox"] == str(report)


def test_the_seccomp_program_jumps_stay_inside_it() -> None:
    """Every jump of the filter lands on an instruction of it, for each machine's table."""
    for machine, (arch, numbers) in _linux.MACHINES.items():
        program = _linux.seccomp_program(arch, numbers)
        for i, (code, jt, jf, _k) in enumerate(program):
            if code & 0x07 == 0x05:  # BPF_JMP
                assert i + 1 + max(jt, jf) < len(program), (machine, i)
        assert 0x06 == program[-1][0]


def test_syscall_numbers_match_libseccomp() -> None:
    """Every syscall number the filter and the Landlock layer use is what libseccomp's resolver
    says, for x86_64 and the generic table (aarch64), where libseccomp is installed."""
    try:
        libseccomp = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pytest.skip("libseccomp.so.2 is not installed: nothing to cross-check against")
    resolve = libseccomp.seccomp_syscall_resolve_name_arch
    resolve.argtypes, resolve.restype = (ctypes.c_uint32, ctypes.c_char_p), ctypes.c_int
    checked = 0
    for machine in ("x86_64", "aarch64"):
        arch, numbers = _linux.MACHINES[machine]
        for name, number in numbers.items():
            found = resolve(arch, name.encode())
            if found >= 0:  # an older libseccomp may not know the newest syscalls
                assert (name, number) == (name, found), machine
                checked += 1
    assert checked > 40


def test_the_public_api_is_what_all_says() -> None:
    """``sandbox.__all__`` names exactly its public functions and classes."""
    public = {n for n, v in vars(sandbox).items() if not n.startswith("_")
              and getattr(v, "__module__", None) == sandbox.__name__}
    assert sorted(public) == sorted(sandbox.__all__)
