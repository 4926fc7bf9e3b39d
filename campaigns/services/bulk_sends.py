"""Sending one message per row of a CSV file (`manage.py send_bulk`), in bounded memory, at most once per row.

The file is read row by row and sent a chunk of rows at a time on the chunk pipeline (chunk_pipeline.py: rows
checked and rendered, then stored by deliveries.services.bulk.messages_create_many), so memory does not grow
with the file. Each row's message carries the dedupe key `<key>:<line>` (unique among messages), and the run is
recorded as a Batch under its key (the file's SHA-256 unless given): running the same file again, after an
interruption or by mistake, stores only the rows the first run did not reach. A new key sends again on purpose.
"""

from __future__ import annotations

import csv
import hashlib
from _csv import Reader as CsvReader  # what csv.reader() returns (the csv module does not name it)
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from content.models import MessageTemplate
from content.services.templates import (
    RenderedContent,
    TemplateRenderError,
    TemplateVersion,
    template_content_validate,
    version_render,
)
from deliveries.models import Batch, Message
from deliveries.selectors import archived_status_counts
from deliveries.services.bulk import BulkResult, chunked, messages_create_many
from deliveries.services.messages import MessageRequest, MessageValidationError, message_request_validate
from deliveries.services.suppression import suppressions_blocking

from .chunk_pipeline import ChunkPipeline, Stored, pipeline_run
from .forked import ProcessFailed

CHUNK_SIZE = 2000


class BulkSendError(ValueError):
    """The file or the options cannot be sent at all; nothing was stored."""


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str


@dataclass
class BulkSendReport:
    key: str
    rows: int = 0
    accepted: int = 0  # stored by this run
    queued: int = 0
    scheduled: int = 0
    already_sent: int = 0  # stored by an earlier run with the same key, so skipped
    # Stored, but on the suppression list: the worker will end them `suppressed` instead of sending them.
    suppressed: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    # Stored, but held for review by the cost guard's velocity limits (not sent until a person releases them).
    held: list[RejectedRow] = field(default_factory=list)
    blank_lines: int = 0
    dry_run: bool = False
    batch_id: int | None = None

    def summary(self) -> str:
        verb = "would be" if self.dry_run else "were"
        text = (
            f"{self.rows} row(s): {self.accepted} {verb} accepted ({self.queued} queued, {self.scheduled} scheduled), "
            f"{self.already_sent} already sent by an earlier run with this key, {len(self.rejected)} rejected, "
            f"{self.suppressed} suppressed."
        )
        if self.held:
            text += f" {len(self.held)} held for review by the velocity limits."
        if self.blank_lines:
            text += f" {self.blank_lines} blank line(s) ignored."
        return text


@dataclass
class BulkContent:
    """What every row sends: a stored template, or a body (and subject) written for this run."""

    channel: str
    template: MessageTemplate | None = None
    body: str = ""
    subject: str = ""
    category: str = ""  # every row's (marketing unless given); a row's `purpose` column may make it a one-time code


def file_fingerprint(path: Path) -> tuple[str, int]:
    """The file's SHA-256 and its number of lines, read in blocks (never the whole file at once)."""
    digest = hashlib.sha256()
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            lines += block.count(b"\n")
    return digest.hexdigest(), lines


def bulk_content(
    *, template: str = "", channel: str = "", body: str = "", subject: str = "", columns: list[str]
) -> BulkContent:
    """Check the content options against the file's columns. Raises BulkSendError."""
    if template:
        found = MessageTemplate.objects.prefetch_related("translations").filter(slug=template).first()
        if found is None:
            raise BulkSendError(f"No template with slug '{template}'.")
        return BulkContent(channel=found.channel, template=found)
    if not channel or not body:
        raise BulkSendError("Give --template SLUG, or --channel and --body.")
    try:
        template_content_validate(
            channel=channel, subject=subject, body=body, variables={name: None for name in columns}
        )
    except ValidationError as error:
        problems = [
            f"--{name.replace('_', '-')}: {text}" for name, texts in error.message_dict.items() for text in texts
        ]
        raise BulkSendError(" ".join(problems).replace("declared variable", "column of the file")) from error
    return BulkContent(channel=channel, body=body, subject=subject)


def bulk_send_csv(
    *,
    path: str | Path,
    template: str = "",
    channel: str = "",
    body: str = "",
    subject: str = "",
    category: str = "",
    send_at: datetime | None = None,
    key: str = "",
    dry_run: bool = False,
    created_by: User | None = None,
    on_start: Callable[[int], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
    encoding: str = "utf-8-sig",
    processes: int = 1,
) -> BulkSendReport:
    """Send one message per row of the CSV file at `path`; see the module docstring. Raises BulkSendError.

    `on_start(expected_rows)` and `on_rows(lines_done)` drive a progress bar (a chunk of lines at a time, a
    line at a time in a dry run). With `processes` above 1 (on PostgreSQL, outside a transaction), that many
    processes check, render and store the rows, a chunk each at a time, while this one reads the file:
    checking and rendering are Python, and one process keeps one core.
    """
    path = Path(path)
    try:
        file_hash, lines = file_fingerprint(path)
    except OSError as error:
        raise BulkSendError(f"Cannot read {path}: {error.strerror}.") from error
    key = key or f"sha256:{file_hash}"
    if len(key) > 200:
        raise BulkSendError("Keep --key under 200 characters.")
    batch = Batch.objects.filter(key=key).first()
    if batch is not None and batch.file_hash != file_hash:
        raise BulkSendError(
            f"The key '{key}' was used for a different file (or this file has changed since). Rows are matched "
            "by line number under a key, so sending a changed file under it could skip or repeat people. "
            "Put the rows still to send in a new file, or give a new --key to send this one in full."
        )
    if batch is not None and (archived := sum(archived_status_counts(batch_id=batch.pk).values())):
        raise BulkSendError(
            f"{archived} message(s) sent under the key '{key}' were archived: their rows, which keep a row from going "
            "out twice, are no longer in the database. Restore them first (manage.py restore_messages), or give a "
            "new --key to send this file in full."
        )
    report = BulkSendReport(key=key, dry_run=dry_run)
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as error:
            raise BulkSendError(f"Line 1: the file is not readable CSV ({error}).") from error
        columns = [name.strip() for name in header or []]
        if "to" not in columns:
            raise BulkSendError("The first line must name the columns, one of them 'to' (the recipient).")
        if len(set(columns)) != len(columns) or "" in columns:
            raise BulkSendError("Every column needs a name, and each name once.")
        content = bulk_content(template=template, channel=channel, body=body, subject=subject, columns=columns)
        content.category = category
        if on_start is not None:
            on_start(max(lines - 1, 0))
        if dry_run:
            items = _valid_items(_lines(reader), columns, content, send_at, key, report, on_rows)
            _check_only(_counting_suppressed(items, report, chunk_size), report, chunk_size)
            return report
        first_run = batch is None
        if batch is None:
            batch = Batch.objects.create(
                kind=Batch.Kind.CSV, key=key, file_name=str(path), file_hash=file_hash, created_by=created_by
            )
        report.batch_id = batch.pk
        # The key's first run: no row can have been stored under it, so none is looked up first.
        store_options = {"batch": batch, "created_by": created_by, "new_dedupe_keys": first_run}
        rows = CsvRowsToMessages(
            lines=_lines(reader),
            columns=columns,
            content=content,
            send_at=send_at,
            key=key,
            store_options=store_options,
            chunk_size=chunk_size,
            report=report,
            on_rows=on_rows,
        )
        _run(rows, processes)
        result = rows.result
    report.accepted, report.queued, report.scheduled = result.created, result.queued, result.scheduled
    report.already_sent = result.skipped
    Batch.objects.filter(pk=batch.pk).update(
        accepted=Message.objects.filter(batch=batch).count(), rejected=len(report.rejected), finished_at=timezone.now()
    )
    return report


class _Addressed(NamedTuple):
    """What suppressions_blocking reads of a message, for a request not stored yet (`pk`: its place)."""

    pk: int
    channel: str
    recipient: str
    category: str


def _counting_suppressed(items: Iterable, report: BulkSendReport, chunk_size: int) -> Iterator:
    """Pass `items` through, adding to `report.suppressed` those addressed to suppressed recipients, looked up
    a chunk at a time as the rows go by (reading the stored messages back afterwards took a run's last 0.3 s)."""
    chunk: list[_Addressed] = []
    for item in items:
        request = item[0]
        chunk.append(_Addressed(len(chunk), request.channel, request.recipient, request.category))
        if len(chunk) >= chunk_size:
            report.suppressed += len(suppressions_blocking(chunk))
            chunk = []
        yield item
    report.suppressed += len(suppressions_blocking(chunk))


def _check_only(items: Iterator, report: BulkSendReport, chunk_size: int) -> None:
    """A dry run: count what would be stored, asking the database which dedupe keys it has, a chunk at a time."""
    chunk: list[str] = []

    def flush() -> None:
        stored = Message.objects.filter(dedupe_key__in=chunk).count()
        report.already_sent += stored
        report.accepted += len(chunk) - stored
        chunk.clear()

    now = timezone.now()
    for request, _content in items:
        chunk.append(request.dedupe_key)
        if request.send_at is not None and request.send_at > now:
            report.scheduled += 1
        if len(chunk) >= chunk_size:
            flush()
    flush()
    report.queued = report.accepted - report.scheduled


def _lines(reader: CsvReader) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each record of the file after the header. Raises BulkSendError."""
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as error:
            raise BulkSendError(f"Line {reader.line_num}: the file is not readable CSV ({error}).") from error
        yield line, cells
        line = reader.line_num + 1


def _valid_items(
    lines: Iterable[tuple[int, list[str]]],
    columns: list[str],
    content: BulkContent,
    send_at: datetime | None,
    key: str,
    report: BulkSendReport,
    on_rows: Callable[[int], None] | None,
) -> Iterator[tuple[MessageRequest, RenderedContent]]:
    """Yield (request, content) for each valid row; count and record the rest in `report`."""
    for row_line, cells in lines:
        if on_rows is not None:
            on_rows(1)
        if not any(cell.strip() for cell in cells):
            report.blank_lines += 1
            continue
        report.rows += 1
        if len(cells) != len(columns):
            report.rejected.append(
                RejectedRow(row_line, f"The line has {len(cells)} values but the header names {len(columns)} columns.")
            )
            continue
        values = dict(zip(columns, cells, strict=True))
        to = values.pop("to").strip()
        purpose = values.pop("purpose", "").strip()  # `otp`: a one-time code, under the strictest velocity limits
        try:
            request, rendered = _validate_row(content, to=to, purpose=purpose, context=values, send_at=send_at)
        except MessageValidationError as error:
            reason = " ".join(f"{name}: {' '.join(texts)}" for name, texts in error.errors.items())
            report.rejected.append(RejectedRow(row_line, reason))
            continue
        # Set on the request made for this row alone: dataclasses.replace, copying its eighteen fields, was a
        # tenth of a row's cost.
        request.dedupe_key = f"{key}:{row_line}"
        yield request, rendered


# --- On the chunk pipeline ------------------------------------------------------------------------------------


@dataclass
class _CheckedRows:
    """A chunk of lines checked and rendered: how many lines, their report (rejections, blank lines, suppressed),
    the messages to store."""

    lines: int
    report: BulkSendReport
    items: list


@dataclass
class _StoredRows:
    lines: int
    report: BulkSendReport
    result: BulkResult


class CsvRowsToMessages(ChunkPipeline[list, _CheckedRows, _StoredRows]):
    """The file's lines, `chunk_size` at a time: each chunk checked and rendered, then stored in one transaction.
    Chunks are independent (a row's dedupe key makes it once), so they are stored in whatever order they come."""

    def __init__(
        self,
        *,
        lines: Iterator[tuple[int, list[str]]],
        columns: list[str],
        content: BulkContent,
        send_at: datetime | None,
        key: str,
        store_options: dict[str, Any],
        chunk_size: int,
        report: BulkSendReport,
        on_rows: Callable[[int], None] | None,
    ) -> None:
        self.lines, self.columns, self.content, self.send_at = lines, columns, content, send_at
        self.key, self.store_options, self.chunk_size = key, store_options, chunk_size
        self.report, self.on_rows = report, on_rows  # added to here, in the calling process
        self.result = BulkResult()

    def chunks(self, *, handed_out: bool) -> Iterator[list]:
        return chunked(self.lines, self.chunk_size)

    def prepare(self, chunk: list) -> _CheckedRows:
        report = BulkSendReport(key=self.key)
        items = _valid_items(chunk, self.columns, self.content, self.send_at, self.key, report, None)
        return _CheckedRows(len(chunk), report, list(_counting_suppressed(items, report, len(chunk))))

    def store(self, prepared: _CheckedRows) -> Stored[_StoredRows]:
        items = prepared.items
        result = messages_create_many(items=items, chunk_size=max(len(items), 1), **self.store_options)
        return Stored(_StoredRows(prepared.lines, prepared.report, result))

    def collect(self, answer: _StoredRows) -> None:
        self.report.rows += answer.report.rows
        self.report.blank_lines += answer.report.blank_lines
        self.report.suppressed += answer.report.suppressed
        self.report.rejected.extend(answer.report.rejected)
        # A held row is known by its message's dedupe key, `<key>:<line>`.
        self.report.held.extend(
            RejectedRow(int(key.rsplit(":", 1)[1]), why) for _, key, why in answer.result.holds if key
        )
        self.result.add(answer.result)
        if self.on_rows is not None:
            self.on_rows(answer.lines)


def _run(rows: CsvRowsToMessages, processes: int) -> None:
    """Store the rows in `processes` processes where forking_possible(), else here; rejections in line order.
    A process that fails stops the run with BulkSendError: the chunks stored before are kept, and running the
    same command again stores the rest."""
    try:
        pipeline_run(rows, processes=processes)
    except ProcessFailed as failed:
        if failed.error:
            raise BulkSendError(
                f"Storing rows failed: {failed.error}. The chunks stored before are kept: once the cause is fixed, "
                "run the same command again to send the rest (rows already stored are skipped)."
            ) from None
        raise BulkSendError(
            f"A process storing rows stopped (exit code {failed.exit_code}). The rows it had not stored "
            "are not sent: run the same command again to send them (rows already stored are skipped)."
        ) from None
    rows.report.rejected.sort(key=lambda rejected: rejected.line)
    rows.report.held.sort(key=lambda held: held.line)


def _validate_row(
    content: BulkContent, *, to: str, purpose: str, context: dict[str, Any], send_at: datetime | None
) -> tuple[MessageRequest, RenderedContent]:
    category = content.category
    if content.template is not None:
        return message_request_validate(
            channel=content.channel,
            to=to,
            template=content.template,
            context=context,
            send_at=send_at,
            category=category,
            purpose=purpose,
        )
    version = TemplateVersion(language="", subject=content.subject, body=content.body)
    try:
        rendered = version_render(version=version, variables={}, context=context, channel=content.channel)
    except TemplateRenderError as error:
        raise MessageValidationError({error.field: [error.reason]}) from error
    return message_request_validate(
        channel=content.channel,
        to=to,
        body=rendered.body,
        subject=rendered.subject,
        context=context,
        send_at=send_at,
        category=category,
        purpose=purpose,
    )
