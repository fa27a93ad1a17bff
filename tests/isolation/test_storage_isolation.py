"""Storage: keys are relative paths inside the instance's own prefix, `<root>/<name>/`.

The victim's only file is ``<root>/vault-globex/ledger.json``; the attacker ``mallory``
tries to read, overwrite, delete or list it through ``self.rt.storage``. Where an attack
needs a symlink, mallory's own code makes it (it has the filesystem; the handle must not
follow it).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from signalpy_lab.errors import StorageKeyError, TenantIsolationError

from .conftest import VICTIM, VICTIM_LEDGER

LEAVES_PREFIX = "must stay inside its own prefix"
NOT_A_KEY = "A storage key is a non-empty relative path"


def victim_ledger(root: Path) -> Path:
    return root / VICTIM / "ledger.json"


async def test_own_keys_are_readable_and_listed(attack) -> None:
    """The control: mallory writes, reads and lists its own key, so refusals are precise."""

    def own(self):
        self.storage.write_json("notes/today.json", {"by": "mallory"})
        return self.storage.read_json("notes/today.json"), self.storage.list()

    assert ({"by": "mallory"}, ["notes/today.json"]) == await attack(own)


@pytest.mark.parametrize("key", [
    "../vault-globex/ledger.json",
    "notes/../../vault-globex/ledger.json",
    "./../vault-globex/ledger.json",
    "..",
])
@pytest.mark.parametrize("operation", ["read", "write", "delete", "exists", "list"])
async def test_dot_dot_keys_are_refused(attack, victim_intact, key, operation) -> None:
    """Any `..` part is a StorageKeyError for every operation, before the filesystem is touched."""
    args = {"write": (key, b"pwned")}.get(operation, (key,))
    with pytest.raises(StorageKeyError, match=re.escape(f"Storage key {key!r} of 'mallory' "
                                                        f"{LEAVES_PREFIX}")):
        await attack(lambda self: getattr(self.rt.storage, operation)(*args))
    await victim_intact()


@pytest.mark.parametrize("operation", ["read", "write", "delete"])
async def test_absolute_paths_are_refused(attack, victim_intact, storage_root,
                                          operation) -> None:
    """The victim's ledger by absolute path is a StorageKeyError (no absolute paths)."""
    key = str(victim_ledger(storage_root))
    args = (key, b"pwned") if operation == "write" else (key,)
    with pytest.raises(StorageKeyError, match="no absolute paths"):
        await attack(lambda self: getattr(self.storage, operation)(*args))
    await victim_intact()


@pytest.mark.parametrize("key", ["", "ledger.json\x00", "\x00../vault-globex/ledger.json",
                                 None, b"../vault-globex/ledger.json",
                                 Path("../vault-globex/ledger.json")])
async def test_empty_nul_and_non_string_keys_are_refused(attack, victim_intact, key) -> None:
    """Empty keys, NUL bytes, bytes and Path objects are not keys: StorageKeyError."""
    with pytest.raises(StorageKeyError, match=NOT_A_KEY):
        await attack(lambda self: self.rt.storage.write(key, b"pwned"))
    await victim_intact()


async def test_a_backslash_key_is_a_plain_file_name_inside_its_prefix(attack, storage_root,
                                                                     victim_intact) -> None:
    """On POSIX `..\\vault-globex\\ledger.json` is one odd file name in mallory's own prefix."""
    key = "..\\vault-globex\\ledger.json"

    def write_and_list(self):
        self.storage.write(key, b"pwned")
        return self.storage.list()

    assert [key] == await attack(write_and_list)
    assert b"pwned" == (storage_root / "mallory" / key).read_bytes()
    await victim_intact()


async def test_a_symlinked_directory_to_the_victim_is_not_followed(attack,
                                                                  victim_intact) -> None:
    """A link `escape -> <root>/vault-globex` in mallory's prefix: reads and writes refused."""

    def climb(self):
        prefix = Path(self.storage.prefix)
        prefix.mkdir(parents=True, exist_ok=True)
        os.symlink(prefix.parent / VICTIM, prefix / "escape")
        refused = []
        for use in (lambda: self.storage.read("escape/ledger.json"),
                    lambda: self.storage.write("escape/ledger.json", b"pwned"),
                    lambda: self.storage.write("escape/new/loot", b"pwned"),
                    lambda: self.storage.delete("escape/ledger.json"),
                    lambda: self.storage.list("escape")):
            try:
                use()
            except StorageKeyError as error:
                refused.append("leads outside its prefix" in str(error))
        return refused

    assert [True] * 5 == await attack(climb)
    await victim_intact()


async def test_a_symlinked_file_to_the_victims_ledger_is_not_followed(attack,
                                                                     victim_intact) -> None:
    """A link `ledger.json -> <root>/vault-globex/ledger.json`: reading it is refused."""

    def alias(self):
        prefix = Path(self.storage.prefix)
        prefix.mkdir(parents=True, exist_ok=True)
        os.symlink(prefix.parent / VICTIM / "ledger.json", prefix / "ledger.json")
        return self.storage.read("ledger.json")

    with pytest.raises(StorageKeyError, match="leads outside its prefix"):
        await attack(alias)
    await victim_intact()


async def test_list_shows_neither_symlinks_nor_what_they_point_to(attack,
                                                                 victim_intact) -> None:
    """Links to the victim's directory and file beside its own key: `list()` is just that key."""

    def survey(self):
        self.storage.write("own.txt", b"mine")
        prefix = Path(self.storage.prefix)
        os.symlink(prefix.parent / VICTIM, prefix / "dir-link")
        os.symlink(prefix.parent / VICTIM / "ledger.json", prefix / "file-link")
        return self.storage.list()

    assert ["own.txt"] == await attack(survey)
    await victim_intact()


async def test_list_never_shows_another_instances_keys(attack, storage_root) -> None:
    """Same key names in both prefixes: mallory's `list()` holds only its own."""
    victim_ledger(storage_root).parent.joinpath("extra.txt").write_text("victim")

    def write_and_list(self):
        self.storage.write("ledger.json", b"mine")
        return self.storage.list()

    assert ["ledger.json"] == await attack(write_and_list)
    assert VICTIM_LEDGER == json.loads(victim_ledger(storage_root).read_text())


async def test_claiming_the_victims_tenant_does_not_move_the_prefix(attack,
                                                                  storage_root) -> None:
    """An instance targeted at `globex` still works in `<root>/mallory/`: scope is the name."""
    prefix = await attack(lambda self: self.rt.storage.prefix, target="globex")
    assert str((storage_root / "mallory").resolve()) == prefix


async def test_the_dot_key_is_refused_like_an_empty_key(attack) -> None:
    """`"."` is the prefix itself, not a key inside it: StorageKeyError."""
    with pytest.raises(StorageKeyError, match=re.escape("'.'")):
        await attack(lambda self: self.storage.write(".", b"x"))


async def test_issuing_a_storage_handle_for_the_victim_is_refused(attack,
                                                                 victim_intact) -> None:
    """`type(self.rt.storage).issue(root, "vault-globex")` must not open the victim's prefix."""

    def forge(self):
        root = Path(self.rt.storage.prefix).parent
        victim = type(self.rt.storage).issue(root, VICTIM)
        victim.write_json("ledger.json", {"balance": 0, "tenant": "mallory"})
        return victim.list()

    with pytest.raises((AttributeError, TypeError, StorageKeyError, TenantIsolationError)):
        await attack(forge)
    await victim_intact()
