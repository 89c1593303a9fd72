"""What the SQLite state file holds: its two tables, and the SQL statements that read and
write them (a call's keys, and the webhook nonces of the replay record).

Apart from :class:`answerkit.state_sqlite.SQLiteStore` because both the store's operations
and each new connection (answerkit/_sqlite_connections.py, which makes sure the tables
exist) need the schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import lru_cache
from typing import Any

# Each table is its primary key (WITHOUT ROWID) and has no other index, so a write touches
# one B-tree page per row: a webhook commits twice (its replay record, its state), and each
# extra page was another write to the WAL. Expired rows are found by a scan in the
# background (answerkit/_sqlite_upkeep.py), off the webhooks' path. Files made by earlier
# versions (rowid tables with expiry indexes) keep working unchanged.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_uuid  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (call_uuid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    key        TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""


# One statement, so atomic without a transaction: upsert the key and push the expiry of
# the call's other live rows forward (re-upserting them unchanged). Expired rows are left
# expired, never revived; the purge removes them.
# Named parameters, bound from a dict: numbered ones (?1) bound from a tuple warn on
# Python 3.12.0-3.12.3 (a DeprecationWarning, an error under -W error; CPython gh-117995).
_PUT = (
    "INSERT INTO calls (call_uuid, key, value, expires_at) "
    "SELECT :call, :key, :value, :until "
    "UNION ALL SELECT call_uuid, key, value, :until FROM calls "
    "WHERE call_uuid = :call AND expires_at > :now AND key <> :key "
    "ON CONFLICT (call_uuid, key) DO UPDATE "
    "SET value = excluded.value, expires_at = excluded.expires_at"
)

# In key order, as every store lists a call's keys (the table's own order; a file made by an
# earlier version may not keep it).
_GET_ALL = "SELECT key, value FROM calls WHERE call_uuid = ? AND expires_at > ? ORDER BY key"

_GET_ONE = "SELECT value FROM calls WHERE call_uuid = ? AND key = ? AND expires_at > ?"

_NONCE_CHUNK = 16


@lru_cache(maxsize=_NONCE_CHUNK)
def _remember_sql(rows: int) -> str:
    values = ", ".join(["(?, ?)"] * rows)
    return (
        f"INSERT INTO nonces (key, expires_at) VALUES {values} ON CONFLICT (key) "
        "DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?"
    )


def _recorder(unique: list[str], ttl: float, now: float) -> Callable[[sqlite3.Connection], int]:
    """A function recording ``unique`` keys, returning how many were new (or had expired)."""
    chunks = [unique[i : i + _NONCE_CHUNK] for i in range(0, len(unique), _NONCE_CHUNK)]

    def record(conn: sqlite3.Connection) -> int:
        # One statement per chunk, so atomic: inserts new keys and revives expired ones; an
        # unexpired key makes the WHERE false and counts no change.
        changed = 0
        for chunk in chunks:
            params: list[Any] = []
            for key in chunk:
                params += (key, now + ttl)
            params.append(now)
            changed += conn.execute(_remember_sql(len(chunk)), params).rowcount
        return changed

    return record
