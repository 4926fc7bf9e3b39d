"""How much WAL one database wrote between two moments, on a PostgreSQL server others use too.

The server's WAL position (`pg_current_wal_lsn()`) counts every database's writes. When the server runs on this
machine and its WAL directory can be read (root, or the postgres user), `pg_waldump` reads the records back and
only those touching a block of our database count, with the commit records of the transactions that wrote them:
full-page images included, as they are what a replica and an archive receive. Otherwise the whole server's figure
is given, and said to be that.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

RECORD = re.compile(r"len \(rec/tot\):\s*(\d+)/\s*(\d+), tx:\s*(\d+),.*?desc: (\S+)(.*)")


class WalMeter:
    def __init__(self, connection) -> None:
        self.connection = connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
            self.database_oid = str(cursor.fetchone()[0])
            cursor.execute("SELECT current_setting('data_directory', true), current_setting('server_version_num')")
            data_directory, version = cursor.fetchone()
        self.wal_dir = Path(data_directory or "/nonexistent") / "pg_wal"
        self.waldump = shutil.which("pg_waldump") or f"/usr/lib/postgresql/{int(version) // 10000}/bin/pg_waldump"
        self.why_whole_server = self._why_whole_server()

    def _why_whole_server(self) -> str | None:
        if not Path(self.waldump).exists():
            return "pg_waldump not found"
        try:
            next(self.wal_dir.iterdir())
        except (OSError, StopIteration):
            return f"{self.wal_dir} cannot be read here"
        return None

    def position(self) -> str:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_flush_lsn()::text")
            return cursor.fetchone()[0]

    def database_size(self) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            return int(cursor.fetchone()[0])

    def bytes_since(self, start: str) -> tuple[int, int | None, str]:
        """WAL bytes written since `start` (a `position()`), how many of them were full-page images (None when
        only the whole server's figure could be had), and what was counted: this database, or the whole server
        and why."""
        end = self.position()
        why = self.why_whole_server
        if why is None:
            dump = subprocess.run(
                [self.waldump, "-p", str(self.wal_dir), "-s", start, "-e", end], capture_output=True, text=True
            )
            if dump.returncode == 0:
                return (*database_wal_bytes(dump.stdout, self.database_oid), "this database (pg_waldump)")
            # Part of the range was recycled by a checkpoint, say: a partial count would read low.
            why = dump.stderr.strip()[-160:] or f"pg_waldump exited {dump.returncode}"
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT %s::pg_lsn - %s::pg_lsn", [end, start])
            return int(cursor.fetchone()[0]), None, f"whole server ({why})"


def database_wal_bytes(dump: str, database_oid: str) -> tuple[int, int]:
    """From pg_waldump's output: the bytes of the records that touch a block of the database, with the commit
    records of their transactions, and how many of those bytes were full-page images."""
    ours = f"/{database_oid}/"
    total = full_pages = 0
    transactions, commits = set(), []
    for line in dump.splitlines():
        match = RECORD.search(line)
        if match is None:
            continue
        record, size, xid, kind, rest = int(match[1]), int(match[2]), match[3], match[4], match[5]
        if " rel " in rest and ours in rest:
            total += size
            full_pages += size - record  # a record's total beyond its own length is the page images it carries
            transactions.add(xid)
        elif kind == "COMMIT":
            commits.append((xid, size))
    return total + sum(size for xid, size in commits if xid in transactions and xid != "0"), full_pages
