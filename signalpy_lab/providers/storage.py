"""``StorageProvider``: files on the local filesystem, one prefix per component instance.

Root: the ``root`` property, else ``$SIGNALPY_LAB_STORAGE``, else ``./.signalpy_lab/storage``
(the embedded default: visible next to the notebook, easy to inspect and delete).
``self.rt.storage`` works inside ``<root>/<instance-name>/`` only. Keys are relative paths
(``'reports/2026.json'``); ``..``, absolute paths, NUL bytes, empty keys and symlinks that
lead outside the prefix are rejected with ``StorageKeyError``. Writes are atomic: a temp file
in the same directory, ``fsync``, then ``os.replace``, so a crash leaves the old value or the
new one, never a partial file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import StorageKeyError
from ..kernel import component, lifecycle, provides
from ..kernel.registry import Consumer
from ..kernel.sealed import Sealed, seal, unseal

__all__ = ["StorageHandle", "StorageProvider", "default_root"]

ENV_ROOT = "SIGNALPY_LAB_STORAGE"
_TEMP_SUFFIX = ".signalpy-tmp"


def default_root() -> Path:
    """Where storage lives when no ``root`` property is given."""
    return Path(os.environ.get(ENV_ROOT) or Path.cwd() / ".signalpy_lab" / "storage")


@component("storage", version="1.0")
@provides("IStorage")
class StorageProvider:
    """Properties: ``root`` (a directory; created if missing)."""

    @lifecycle.activate
    def activate(self) -> None:
        root = self.rt.properties.get("root")
        self.root = Path(root) if root else default_root()
        self.root.mkdir(parents=True, exist_ok=True)

    def handle(self, name: str) -> StorageHandle:
        """The storage of component instance ``name``."""
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise StorageKeyError(f"A storage prefix is a plain instance name, got {name!r}.")
        return seal(StorageHandle, ((self.root / name).resolve(), name))

    def scoped_for(self, consumer: Consumer) -> StorageHandle:
        return self.handle(consumer.name)

    def __repr__(self) -> str:
        return f"<StorageProvider root={str(getattr(self, 'root', '?'))!r}>"


class StorageHandle(Sealed):
    """Key/value files inside one instance's prefix directory (a sealed handle)."""

    __slots__ = ()

    @property
    def _prefix(self) -> Path:
        return unseal(self, StorageHandle)[0]  # type: ignore[no-any-return]

    @property
    def _name(self) -> str:
        return unseal(self, StorageHandle)[1]  # type: ignore[no-any-return]

    @property
    def prefix(self) -> str:
        """The directory this handle is confined to."""
        return str(self._prefix)

    def _path(self, key: object) -> Path:
        if not isinstance(key, str) or not key or "\x00" in key:
            raise StorageKeyError(
                f"A storage key is a non-empty relative path like 'reports/q1.json', got {key!r}."
            )
        relative = Path(key)
        if relative.is_absolute() or key.startswith(("/", "\\")) or ".." in relative.parts:
            raise StorageKeyError(
                f"Storage key {key!r} of {self._name!r} must stay inside its own prefix "
                "(no '..', no absolute paths)."
            )
        if key.endswith(_TEMP_SUFFIX):
            raise StorageKeyError(f"Storage keys may not end with {_TEMP_SUFFIX!r}, got {key!r}.")
        path = self._prefix / relative
        resolved = path.resolve()
        if resolved == self._prefix:
            raise StorageKeyError(
                f"Storage key {key!r} of {self._name!r} names the prefix itself; name a file "
                "inside it, like 'state.json'."
            )
        if self._prefix not in resolved.parents:
            raise StorageKeyError(
                f"Storage key {key!r} of {self._name!r} leads outside its prefix (a symlink?)."
            )
        return path

    def file_path(self, key: str) -> Path:
        """The filesystem path of ``key`` inside this prefix, for libraries that open files
        themselves (``sqlite3.connect``); checked like every key, parent directories created.
        """
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path(key)  # re-check after creating parents: no symlinked directory sneaks in
        return path

    def write(self, key: str, data: bytes | str) -> None:
        """Store ``data`` under ``key`` atomically (text is written as UTF-8)."""
        path = self._path(key)
        payload = data.encode() if isinstance(data, str) else bytes(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path(key)  # re-check after creating parents: no symlinked directory sneaks in
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                    suffix=_TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def read(self, key: str) -> bytes:
        """The bytes stored under ``key`` (``KeyError`` if none)."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(f"No storage key {key!r} for {self._name!r}.") from None

    def write_text(self, key: str, text: str) -> None:
        self.write(key, text.encode())

    def read_text(self, key: str) -> str:
        return self.read(key).decode()

    def write_json(self, key: str, value: Any) -> None:
        self.write(key, json.dumps(value, indent=2, sort_keys=True))

    def read_json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether it existed."""
        path = self._path(key)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def list(self, prefix: str = "") -> list[str]:
        """Own keys (optionally under a sub-path), sorted; never anything outside the prefix."""
        base = self._path(prefix) if prefix else self._prefix
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(base, followlinks=False):
            for file in files:
                if file.endswith(_TEMP_SUFFIX):
                    continue
                full = Path(dirpath) / file
                if full.is_symlink():
                    continue
                keys.append(full.relative_to(self._prefix).as_posix())
        return sorted(keys)

    def __repr__(self) -> str:
        return f"<storage of {self._name!r}>"


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
