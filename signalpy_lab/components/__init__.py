"""Components for the design note's production considerations, built on kernel + providers.

Real tenant databases (SQLite files in each tenant's own storage), a quota in front of them
(the ``limits`` library, limits from reactive config), and an admin view across tenants.
Each is an ordinary component; ``signalpy_lab.examples.sqlite_tenants`` wires them up.
"""

from .admin import TenantAdmin
from .quota import DEFAULT_RATE, TenantQuota
from .sqlite_db import SCHEMA, SqliteTenantDatabase, db_file_of

__all__ = ["DEFAULT_RATE", "SCHEMA", "SqliteTenantDatabase", "TenantAdmin", "TenantQuota",
           "db_file_of"]
