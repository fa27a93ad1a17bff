"""Without the [remote] extra, what needs it is refused in one line that names the extra.

Each test runs in a fresh interpreter where ``nats`` and ``cloudpickle`` cannot be imported
(``sys.modules[name] = None``), as in a plain ``pip install signalpy-lab``. The real thing, a
wheel installed without extras into a new venv, is ``tests/test_wheel.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from signalpy_lab.errors import MissingExtraError
from signalpy_lab.extras import require_extra

WITHOUT_REMOTE = "import sys\nsys.modules['nats'] = sys.modules['cloudpickle'] = None\n"
HINT = "pip install 'signalpy-lab[remote]'"


def run_without_remote(code: str) -> str:
    """Run ``code`` in a fresh interpreter without the [remote] extra; return its stdout."""
    done = subprocess.run([sys.executable, "-c", WITHOUT_REMOTE + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)
    assert 0 == done.returncode, done.stderr
    return done.stdout


def test_importing_remote_names_the_extra() -> None:
    """`import signalpy_lab.remote` is an ImportError whose one line says what to install."""
    out = run_without_remote("""
        try:
            import signalpy_lab.remote.transport
        except ImportError as exc:
            print(type(exc).__name__, exc.name)
            print(exc)
    """)
    kind, message = out.splitlines()
    assert "MissingExtraError nats" == kind
    assert ("signalpy_lab.remote needs nats-py and cloudpickle, which are not installed: "
            f"{HINT}") == message


def test_process_isolation_is_refused_at_instantiate() -> None:
    """`isolation="process"` fails at once, naming the extra, and leaves no instance behind."""
    out = run_without_remote("""
        from signalpy_lab.examples.multi_tenant import TenantDatabase
        from signalpy_lab.kernel import Kernel
        kernel = Kernel()
        kernel.discover([TenantDatabase])
        try:
            kernel.instantiate("tenant-db", "tenant-db-hooli", {"target": "hooli"},
                               isolation="process")
        except ImportError as exc:
            print(exc)
        print([i.name for i in kernel.instances()])
    """)
    message, instances = out.splitlines()
    assert message.endswith(HINT)
    assert "[]" == instances


def test_instantiate_process_magic_is_a_one_line_usage_error() -> None:
    """In the lab, `%instantiate ... --process` without the extra is a UsageError, no traceback."""
    out = run_without_remote("""
        from signalpy_lab.testing import LabShell
        with LabShell() as lab:
            lab.run("%discover signalpy_lab.examples.multi_tenant.TenantDatabase")
            print(lab.usage_error(
                "%instantiate tenant-db tenant-db-hooli target=hooli --process"))
            print(lab.output.count("Traceback"))
    """)
    *message, tracebacks = out.splitlines()
    assert 1 == len(message)
    assert message[0].endswith(HINT)
    assert "0" == tracebacks


def test_require_extra_checks_without_importing() -> None:
    """An installed extra passes; an unknown extra is a ValueError listing the known ones."""
    require_extra("remote", "the suite")  # the test environment has every extra
    with pytest.raises(ValueError, match=r"Unknown extra 'remot'; expected one of \['jupyterlab', "
                                         r"'remote'\]"):
        require_extra("remot", "the suite")
    assert issubclass(MissingExtraError, ImportError)
