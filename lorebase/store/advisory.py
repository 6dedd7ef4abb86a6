"""Names for PostgreSQL advisory locks: one signed 64-bit key per name, the same in every process
on every host (``pg_advisory_lock`` takes a bigint; advisory locks are per database)."""

from __future__ import annotations

import hashlib

# The lock the change-log trigger takes for the rest of a transaction that adds or removes chunks
# (migration 0006 holds this number as a literal; it is advisory_key("index_changes")).
CHANGE_LOG_KEY = 1737798647194453592


def advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"lorebase:{name}".encode()).digest()[:8], "big", signed=True)
