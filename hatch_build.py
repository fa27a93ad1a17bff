"""Build hook: the reactive engine compiled from its own Python source, when it can be.

``signalpy_lab/kernel/graph.py`` is plain Python with Cython's pure-Python-mode
declarations (typed node classes). Here Cython translates it to C and the platform's C
compiler builds ``signalpy_lab.kernel._graph_c``, which ``signalpy_lab.kernel`` loads
instead of the Python module (``SIGNALPY_LAB_ENGINE`` chooses; ``signalpy_lab.kernel.ENGINE``
says which runs). The same tests run against both.

No C compiler, a failing compile, or ``SIGNALPY_LAB_PURE=1`` in the environment: the wheel
is the pure-Python one, with a warning saying why, and everything works, more slowly.
An editable install (``pip install -e .``) puts the extension beside ``graph.py``, with the
SHA-256 of the source it was built from: ``signalpy_lab.kernel`` refuses an extension built
from another version of ``graph.py`` (re-run ``pip install -e .``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "signalpy_lab/kernel/graph.py"
MODULE = "signalpy_lab.kernel._graph_c"
PACKAGE_DIR = "signalpy_lab/kernel"
#: Beside the extension: the SHA-256 of the graph.py it was compiled from, one per ABI (as
#: ``signalpy_lab.kernel._engine.digest_name`` reads it), so editable installs of one tree
#: into venvs of two Python versions keep both builds.
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
DIGEST = f"_graph_c{EXT_SUFFIX}.sha256"
SKIP = "SIGNALPY_LAB_PURE"


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EngineBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        if os.environ.get(SKIP, "").strip() not in ("", "0"):
            self.app.display_info(f"signalpy-lab: {SKIP} is set: the pure-Python engine only")
            self._remove_stale(root, version)
            return
        with tempfile.TemporaryDirectory(prefix="spl-engine-") as tmp:
            try:
                built = self._compile(root, Path(tmp))
            except Exception as exc:  # no compiler, no Python headers, a Cython error, ...
                self.app.display_warning(
                    "signalpy-lab: the compiled engine was not built, so the pure-Python "
                    f"engine will run (same behaviour, slower): {type(exc).__name__}: {exc}")
                self._remove_stale(root, version)
                return
            digest = Path(tmp) / DIGEST
            digest.write_text(source_digest(root / SOURCE) + "\n")
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            if version == "editable":  # the editable install imports from the source tree
                self._remove_stale(root, version)
                shutil.copy2(built, root / PACKAGE_DIR / built.name)
                shutil.copy2(digest, root / PACKAGE_DIR / DIGEST)
            else:
                self._tmp = tempfile.mkdtemp(prefix="spl-engine-wheel-")
                for path in (built, digest):
                    kept = Path(self._tmp) / path.name
                    shutil.copy2(path, kept)
                    build_data["force_include"][str(kept)] = f"{PACKAGE_DIR}/{path.name}"
        self.app.display_info(f"signalpy-lab: compiled engine built ({built.name})")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def _remove_stale(self, root: Path, version: str) -> None:
        """An editable install without a new extension must not keep an old one (this
        interpreter's; another Python's build beside it is checked on its own)."""
        if version != "editable":
            return
        directory = root / PACKAGE_DIR
        for name in (f"_graph_c{EXT_SUFFIX}", DIGEST, "_graph_c.sha256"):
            (directory / name).unlink(missing_ok=True)

    def _compile(self, root: Path, tmp: Path) -> Path:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        extension = Extension(MODULE, [str(root / SOURCE)])
        # include_path: graph.py cimports signalpy_lab/kernel/_pythread.pxd by package name.
        modules = cythonize([extension], build_dir=str(tmp / "c"), quiet=True,
                            include_path=[str(root)],
                            compiler_directives={"language_level": 3})
        # A bare Distribution: the project's own configuration is hatchling's, not setuptools'.
        command = build_ext(Distribution({"ext_modules": modules, "script_name": "setup.py"}))
        command.build_lib = str(tmp / "lib")
        command.build_temp = str(tmp / "temp")
        command.ensure_finalized()
        command.run()
        return Path(command.get_ext_fullpath(MODULE))
