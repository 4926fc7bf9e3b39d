"""Archive files: one per day of the messages' created_at, each a series of gzip members, one member per chunk.

A chunk is appended as a whole gzip member and fsynced before its rows are deleted; what the database records as
the file's committed size (ArchiveFile.size) moves past it in the deleting transaction. Reading tolerates an
unfinished last member (a run killed while writing it, whose rows were therefore never deleted) and says so.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

READ_BLOCK = 1 << 20
# Level 6: four times faster than gzip's default 9, for files a few percent larger.
COMPRESS_LEVEL = 6


class ArchiveFileError(Exception):
    """An archive file that cannot be written or read as it should; the message says what to do."""


def day_file_path(directory: Path, day: date, part: int) -> Path:
    """`messages-2026-09-01.jsonl.gz`, and `messages-2026-09-01-2.jsonl.gz` for a day's second part (the first
    was moved away, or was written by another host)."""
    suffix = "" if part == 1 else f"-{part}"
    return directory / f"messages-{day:%Y-%m-%d}{suffix}.jsonl.gz"


def member_append(path: Path, *, committed: int, lines: list[str]) -> int:
    """Cut the file back to its `committed` bytes (what a killed run left after them was never committed), append
    `lines` as one gzip member and fsync it. Returns the file's new size."""
    data = gzip.compress("".join(lines).encode(), compresslevel=COMPRESS_LEVEL, mtime=0)
    created = not path.exists()
    try:
        with path.open("xb" if created else "r+b") as handle:
            handle.truncate(committed)
            handle.seek(committed)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if created:  # the new name must survive a crash too
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    except OSError as error:
        raise ArchiveFileError(f"Cannot write {path}: {error.strerror or error}. Check the directory.") from error
    return committed + len(data)


@dataclass
class ArchiveReading:
    """The lines of an archive file, member by member; `unfinished` is set once reading reaches an unfinished last
    member (its lines are not given: its rows were never deleted)."""

    path: Path
    unfinished: bool = False
    bytes_read: int = 0

    def lines(self) -> Iterator[list[str]]:
        """Each complete member's lines (with their newlines)."""
        decompressor = zlib.decompressobj(wbits=31)
        started = False
        member = b""
        try:
            handle = self.path.open("rb")
        except OSError as error:
            raise ArchiveFileError(f"Cannot read {self.path}: {error.strerror or error}.") from error
        with handle:
            while block := handle.read(READ_BLOCK):
                self.bytes_read += len(block)
                data = block
                while data:
                    started = True
                    try:
                        member += decompressor.decompress(data)
                    except zlib.error as error:
                        raise ArchiveFileError(
                            f"{self.path} is damaged ({error}): not a file archive_messages wrote, or changed since."
                        ) from error
                    if not decompressor.eof:
                        break
                    yield member.decode().splitlines(keepends=True)
                    data, member, started = decompressor.unused_data, b"", False
                    decompressor = zlib.decompressobj(wbits=31)
        self.unfinished = started
