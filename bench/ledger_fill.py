#!/usr/bin/env python3
"""Writes a hookgate sqlite ledger file (ledger.store: sqlite) with N remembered event ids, in
the layout SQLiteLedgerStore.swift creates, to measure start-up with a large ledger:

  bench/ledger_fill.py /tmp/ledger.sqlite --ids 1000000 [--route vecu] [--ttl-hours 72]

Then start hookgate with `ledger: {store: sqlite, sqlite: {path: /tmp/ledger.sqlite}}` and a
route of that name with `dedup.capacity` >= N, and time start to the "listening" log line (the
"ledger loaded" line gives the load alone). Ids look like the benchmark's (26 characters).

Also imported by Tests/integration/test_ledger_sqlite.py to write files with chosen rows.
"""
import argparse
import os
import sqlite3
import sys
import time

APPLICATION_ID = 0x686B6774  # "hkgt", SQLiteLedgerStore.applicationID
FORMAT_VERSION = 1           # SQLiteLedgerStore.formatVersion
SCHEMA = """
CREATE TABLE delivered (
    seq INTEGER PRIMARY KEY,
    route BLOB NOT NULL,
    source BLOB NOT NULL,
    id BLOB NOT NULL,
    expires_ms INTEGER NOT NULL
);
PRAGMA application_id = %d;
PRAGMA user_version = %d;
""" % (APPLICATION_ID, FORMAT_VERSION)


def now_ms():
    return int(time.time() * 1000)


def create(path):
    """A new, empty ledger file at `path` (which must not exist); returns the connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("BEGIN;" + SCHEMA + "COMMIT;")
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


def add(conn, rows):
    """Appends rows of (route, source, id, expires_ms): str or bytes; str is stored as UTF-8."""
    def blob(v):
        return v if isinstance(v, bytes) else v.encode("utf-8")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO delivered (route, source, id, expires_ms) VALUES (?, ?, ?, ?)",
                     ((blob(r), blob(s), blob(i), int(e)) for r, s, i, e in rows))
    conn.execute("COMMIT")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path")
    p.add_argument("--ids", type=int, default=1_000_000)
    p.add_argument("--route", default="vecu")
    p.add_argument("--source", default="vecu.custody-service")
    p.add_argument("--ttl-hours", type=float, default=72)
    a = p.parse_args(argv)
    if os.path.exists(a.path):
        sys.exit("ledger_fill: %s exists; give a new path" % a.path)
    conn = create(a.path)
    expires = now_ms() + int(a.ttl_hours * 3_600_000)
    batch = 50_000
    for start in range(0, a.ids, batch):
        add(conn, ((a.route, a.source, "evt_%022d" % n, expires + n // 1000)
                   for n in range(start, min(a.ids, start + batch))))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = os.path.getsize(a.path)
    print("%s: %d ids, %d bytes, %.1f bytes per id" % (a.path, a.ids, size, size / max(1, a.ids)))


if __name__ == "__main__":
    main()
