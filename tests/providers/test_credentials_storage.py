"""Credentials scoped per component name, rotating reactively; storage per prefix, atomic."""

from __future__ import annotations

import pytest

from signalpy_lab.errors import StorageKeyError
from signalpy_lab.kernel import Kernel, component, effect, lifecycle, requires
from signalpy_lab.providers import DEFAULT_PROVIDERS


@component("app", depends=["credentials", "storage"])
@requires(creds="ICredentials", storage="IStorage")
class App:
    @lifecycle.activate
    def start(self):
        self.seen = []

    @effect
    def connect(self):
        self.seen.append(self.creds.get("password", default="<none>"))


@pytest.fixture
async def kernel(tmp_path):
    kernel = Kernel()
    kernel.discover([*DEFAULT_PROVIDERS, App])
    kernel.instantiate("credentials", properties={"secrets": {
        "app-acme": {"password": "acme-pw"}, "app-globex": {"password": "globex-pw"}}})
    kernel.instantiate("storage", properties={"root": str(tmp_path)})
    kernel.instantiate("app", "app-acme", {"target": "acme"})
    kernel.instantiate("app", "app-globex", {"target": "globex"})
    await kernel.boot()
    yield kernel
    await kernel.shutdown()


async def test_credentials_are_scoped_to_the_component_name(kernel) -> None:
    """Each instance reads `apps.<its name>.password` through the same key."""
    acme, globex = kernel.component("app-acme"), kernel.component("app-globex")
    assert acme.rt.creds.get("password") == "acme-pw"
    assert globex.creds.get("password") == "globex-pw"
    assert acme.rt.creds.keys() == ["password"]


async def test_rotation_re_runs_effects_that_read_the_secret(kernel) -> None:
    """Rotating acme's password re-runs acme's effect only."""
    service = kernel.registry.require("ICredentials")
    service.rotate("app-acme", "password", "acme-pw-2")
    acme, globex = kernel.component("app-acme"), kernel.component("app-globex")
    assert acme.seen == ["acme-pw", "acme-pw-2"]
    assert globex.seen == ["globex-pw"]


async def test_storage_is_per_instance_prefix(kernel, tmp_path) -> None:
    """Same key, two instances, two files under two prefixes; list() shows only one's own."""
    acme, globex = kernel.component("app-acme"), kernel.component("app-globex")
    acme.storage.write_json("state.json", {"tenant": "acme"})
    globex.rt.storage.write_text("state.json", "globex")
    assert acme.storage.read_json("state.json") == {"tenant": "acme"}
    assert (tmp_path / "app-globex" / "state.json").read_text() == "globex"
    acme.storage.write("reports/q1.bin", b"\x00\x01")
    assert acme.storage.list() == ["reports/q1.bin", "state.json"]
    assert globex.storage.list() == ["state.json"]
    assert acme.storage.delete("state.json") is True
    with pytest.raises(KeyError, match="No storage key 'state.json'"):
        acme.storage.read("state.json")


@pytest.mark.parametrize("key", ["", "../app-globex/state.json", "/etc/passwd", "a/../../x",
                                 "nul\x00byte", None])
async def test_storage_rejects_keys_that_leave_the_prefix(kernel, key) -> None:
    """Traversal, absolute paths, NUL bytes and empty keys are StorageKeyErrors."""
    acme = kernel.component("app-acme")
    with pytest.raises(StorageKeyError):
        acme.storage.write(key, b"x")


async def test_storage_rejects_symlinks_leading_outside(kernel, tmp_path) -> None:
    """A symlink inside the prefix that points outside cannot be followed."""
    acme = kernel.component("app-acme")
    acme.storage.write("seed", b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "app-acme" / "escape").symlink_to(tmp_path / "outside")
    with pytest.raises(StorageKeyError, match="leads outside its prefix"):
        acme.storage.write("escape/loot", b"x")
    assert list((tmp_path / "outside").iterdir()) == []
