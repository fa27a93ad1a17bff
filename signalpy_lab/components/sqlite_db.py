"""``SqliteTenantDatabase``: each tenant instance owns a real SQLite file in its own storage.

    tenants.acme.db_url = "sqlite:///acme.db"    ->  <storage root>/tenant-db-acme/acme.db

* ``db_url`` is a ``@computed`` of the tenant's own config section; ``db_path`` turns it into a
  file inside the instance's **own storage prefix** (the storage handle checks the key), so
  ``sqlite:///../tenant-db-globex/globex.db`` or an absolute path is a ``DbUrlError``: no
  tenant opens another tenant's file through this component.
* an ``@effect`` owns the connection: it opens the file when ``db_path`` changes and closes
  the old one. When the new file does not exist yet, the old database is copied there first
  with SQLite's online backup API (``Connection.backup``): setting
  ``tenants.globex.db_url`` to a new file *is* a live migration, and acme and initech, whose
  keys did not change, neither recompute nor reconnect (``connects`` counts).
* the schema is created in ``activate``, before the instance serves a call; queries are real
  SQL with parameters, never string-formatted (table names come from a fixed set).

The effect runs in the thread that wrote the config key, under the engine's lock, so the
backup happens there: fine for the small databases of a lab, not for a production migration
of gigabytes (which would be its own job, with the effect only switching files).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import DbUrlError, StorageKeyError
from ..kernel import component, computed, effect, lifecycle, provides, requires, runnable

__all__ = ["SCHEMA", "SqliteTenantDatabase", "db_file_of"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0)
);
"""

_PREFIX = "sqlite:///"


def db_file_of(db_url: object) -> str:
    """``'sqlite:///acme.db'`` -> ``'acme.db'`` (the storage key), else a ``DbUrlError``."""
    if not isinstance(db_url, str) or not db_url.startswith(_PREFIX) or \
            len(db_url) == len(_PREFIX):
        raise DbUrlError(f"A tenant db_url is 'sqlite:///<file in its own storage>', like "
                         f"'sqlite:///acme.db', got {db_url!r}.")
    return db_url[len(_PREFIX):]


class QueryParams(BaseModel):
    table: Literal["users", "orders"] = "users"
    limit: int = Field(10, ge=1, le=1000)
    target: str | None = None


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=200)
    target: str | None = None


class NewOrder(BaseModel):
    user_id: int
    amount_cents: int = Field(ge=0)
    target: str | None = None


class Empty(BaseModel):
    target: str | None = None


@component("tenant-db", version="2.0", depends=["config", "storage"])
@provides("ITenantDb")
@requires(config="IConfig", storage="IStorage")
class SqliteTenantDatabase:
    """A tenant's database: its own file, its own connection, real SQL."""

    @lifecycle.activate
    def activate(self) -> None:
        self.connects = 0
        self.queries = 0
        self._lock = threading.Lock()  # one sqlite3 connection, used from the kernel's loop
        self._conn: sqlite3.Connection | None = None
        self._path: Path | None = None
        self._open(self.db_path())  # schema in place before the first call

    @lifecycle.deactivate
    def deactivate(self) -> None:
        self._close()

    # -- the reactive part ---------------------------------------------------------------

    @computed
    def db_url(self) -> str:
        target = self.rt.target
        return self.config.get(f"tenants.{target}.db_url", f"sqlite:///{target}.db")

    @computed
    def db_path(self) -> Path:
        """The file ``db_url`` names, inside this instance's own storage prefix."""
        key = db_file_of(self.db_url())
        try:
            return self.storage.file_path(key)
        except StorageKeyError as exc:
            raise DbUrlError(f"{self.rt.name}: db_url {self.db_url()!r} is refused: {exc}") \
                from None

    @effect
    def connection(self) -> None:
        """(Re)connect when ``db_path`` changes, migrating the data to a new file."""
        path = self.db_path()
        if path != self._path:
            self._open(path)

    # -- connection management -----------------------------------------------------------

    def _open(self, path: Path) -> None:
        with self._lock:
            old = self._conn
            conn = sqlite3.connect(path, check_same_thread=False)
            try:
                fresh = not conn.execute("SELECT name FROM sqlite_master").fetchall()
                if old is not None and fresh:
                    old.backup(conn)  # SQLite's online backup API: a consistent copy
                conn.executescript(SCHEMA)
                conn.commit()
            except BaseException:
                conn.close()
                raise
            self._conn, self._path = conn, path
            if old is not None:
                old.close()
            self.connects += 1

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _cursor(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DbUrlError(f"{self.rt.name} has no open database (it was stopped).")
        return self._conn

    # -- runnables -----------------------------------------------------------------------

    @runnable("add_user", params=NewUser, description="Add a user to this tenant's database")
    def add_user(self, params: NewUser) -> dict[str, Any]:
        return self._insert("INSERT INTO users (name, email) VALUES (?, ?)",
                            (params.name, params.email))

    @runnable("add_order", params=NewOrder, description="Add an order for one of its users")
    def add_order(self, params: NewOrder) -> dict[str, Any]:
        return self._insert("INSERT INTO orders (user_id, amount_cents) VALUES (?, ?)",
                            (params.user_id, params.amount_cents))

    def _insert(self, sql: str, values: tuple[Any, ...]) -> dict[str, Any]:
        """Run one INSERT in this tenant's file and commit it; the new row's id."""
        self.db_path()  # a refused db_url fails the call (read outside our lock: the engine's
        with self._lock:  # lock is taken first by the effect that holds ours)
            conn = self._cursor()
            cursor = conn.execute(sql, values)
            conn.commit()
        return {"tenant": self.rt.target, "id": cursor.lastrowid}

    @runnable("query", params=QueryParams, description="Rows of one table, newest first")
    def query(self, params: QueryParams) -> dict[str, Any]:
        columns = {"users": "id, name, email", "orders": "id, user_id, amount_cents"}
        db_url = self.db_url()
        self.db_path()
        with self._lock:
            conn = self._cursor()
            cursor = conn.execute(  # the table name comes from a Literal, the limit is bound
                f"SELECT {columns[params.table]} FROM {params.table} ORDER BY id DESC LIMIT ?",
                (params.limit,))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row)) for row in cursor.fetchall()]
            self.queries += 1
        return {"tenant": self.rt.target, "db_url": db_url, "table": params.table, "rows": rows}

    @runnable("status", params=Empty, description="Its file, size, counts and connections")
    def status(self, params: Empty) -> dict[str, Any]:
        db_url = self.db_url()
        self.db_path()
        with self._lock:
            conn = self._cursor()
            users = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
            orders = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        path = self._path
        return {"tenant": self.rt.target, "db_url": db_url, "file": path.name if path else None,
                "size_bytes": path.stat().st_size if path and path.exists() else 0,
                "users": users, "orders": orders, "queries": self.queries,
                "connects": self.connects}
