"""Archive files: one per day of the messages' created_at, each a series of gzip members, one member per chunk.

A chunk is appended as a whole gzip member and fsynced before its rows are deleted; what the database records as
the file's committed size (ArchiveFile.size) moves past it in the deleting transaction. Reading tolerates an
unfinished last member (a run killed while writing it, whose rows were therefore never deleted) and says so.

A file is rewritten (an erasure, deliveries.services.archive_erasure) beside itself, as `<name>.rewrite`, fsynced,
and put in place once the transaction recording its new size has committed. A run killed in between leaves the
rewrite: whoever opens the file next settles it first (`rewrite_settle`), putting it in place if its size is the
committed one, deleting it otherwise, so the file on disk always matches its committed size.
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
            _directory_sync(path.parent)
    except OSError as error:
        raise ArchiveFileError(f"Cannot write {path}: {error.strerror or error}. Check the directory.") from error
    return committed + len(data)


def committed_cut(path: Path, committed: int) -> None:
    """Cut off what a killed run appended after the `committed` bytes (the caller holds the archive lock)."""
    try:
        if path.stat().st_size > committed:
            os.truncate(path, committed)
    except OSError as error:
        raise ArchiveFileError(f"Cannot cut {path} back to {committed} bytes: {error.strerror or error}.") from error


def rewrite_path(path: Path) -> Path:
    return path.with_name(path.name + ".rewrite")


def rewrite_write(path: Path, members: Iterator[list[str]]) -> int:
    """Write `members` (each a list of lines, one gzip member each) to `path`'s rewrite, fsynced. Returns its
    size: record it as the file's committed size, commit, then `rewrite_settle` puts it in place.

    Written under a name of its own and renamed once whole: a `.rewrite` beside a file is always complete, so a
    process killed while writing never leaves a half file that could be taken for the committed one."""
    rewrite, partial = rewrite_path(path), path.with_name(path.name + ".rewrite-partial")
    try:
        with partial.open("wb") as handle:
            for lines in members:
                handle.write(gzip.compress("".join(lines).encode(), compresslevel=COMPRESS_LEVEL, mtime=0))
            handle.flush()
            os.fsync(handle.fileno())
            size = handle.tell()
        os.replace(partial, rewrite)
        _directory_sync(path.parent)  # its name must survive a crash once its size is committed
        return size
    except BaseException as error:  # a member that cannot be read, or an exit: nothing half written is left
        partial.unlink(missing_ok=True)
        rewrite.unlink(missing_ok=True)
        if isinstance(error, OSError):
            reason = error.strerror or error
            raise ArchiveFileError(f"Cannot write {rewrite}: {reason}. Check the directory.") from error
        raise


def rewrite_settle(path: Path, committed: int) -> None:
    """Finish what a rewrite of `path` left: in place if its size is the `committed` one (the transaction that
    recorded it committed; were the sizes equal by chance, both files hold the same rows), else deleted. Only
    under the archive lock, with the committed size read under it: a rewrite in progress is never touched."""
    rewrite = rewrite_path(path)
    try:
        if not rewrite.exists():
            return
        if rewrite.stat().st_size == committed:
            os.replace(rewrite, path)
            _directory_sync(path.parent)
        else:
            rewrite.unlink()
    except OSError as error:
        raise ArchiveFileError(f"Cannot settle {rewrite}: {error.strerror or error}. Check the directory.") from error


def _directory_sync(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _lines_of(text: str) -> list[str]:
    """The lines (with their newlines) of a member's text, split at "\n" only: str.splitlines would also split
    at the U+2028, U+2029 and U+0085 a message's body may hold, which JSON leaves unescaped."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


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
                    yield _lines_of(member.decode())
                    data, member, started = decompressor.unused_data, b"", False
                    decompressor = zlib.decompressobj(wbits=31)
        self.unfinished = started
