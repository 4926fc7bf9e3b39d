"""Importing contacts from a CSV file: read it keeping each row's line, run the contact resource, report.

Every row is checked; valid rows are written (created or updated, matched by phone then email), each rejected
row is reported with its line and the reason, and rows that change nothing are left untouched, so importing
the same file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import tablib
from django.core.exceptions import ValidationError
from import_export.results import RowResult

from ..resources import ContactResource, contact_import_headers, validation_reason


class ContactImportFileError(ValueError):
    """The file as a whole cannot be imported (no header, no phone or email column, ...)."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass
class ContactImportFile:
    """A CSV file read into rows, with the line each row starts on."""

    dataset: tablib.Dataset
    line_numbers: list[int]
    row_problems: dict[int, str] = field(default_factory=dict)
    blank_lines: int = 0

    def __len__(self) -> int:
        return len(self.dataset)


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str


@dataclass
class ContactImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    blank_lines: int = 0
    dry_run: bool = False
    # An unexpected error on a row rolls the whole import back: nothing was saved.
    rolled_back: bool = False

    def summary(self) -> str:
        verb = "would be" if self.dry_run else "were"
        text = (
            f"{self.rows} row(s): {self.created} contact(s) {verb} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected."
        )
        if self.blank_lines:
            text += f" {self.blank_lines} blank line(s) ignored."
        if self.rolled_back:
            text += " Nothing was saved: the import stopped on an unexpected error."
        return text


def contacts_read_csv(file: TextIO) -> ContactImportFile:
    """Read a CSV file whose first line names the columns. Raises ContactImportFileError for a file that cannot
    be imported at all; a malformed line becomes a rejected row, never a silently dropped one."""
    reader = csv.reader(file)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ContactImportFileError(["The file is empty: its first line should name the columns."])
        try:
            headers = contact_import_headers(header)
        except ValidationError as error:
            raise ContactImportFileError(error.messages) from error
        source = ContactImportFile(dataset=tablib.Dataset(headers=headers), line_numbers=[])
        line = reader.line_num + 1
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                source.blank_lines += 1
            else:
                if len(cells) > len(headers) and any(cell.strip() for cell in cells[len(headers) :]):
                    source.row_problems[len(source.dataset) + 1] = (
                        f"The line has {len(cells)} values but the header names {len(headers)} columns "
                        "(a comma inside a value needs quotes around the value)."
                    )
                cells = (cells + [""] * len(headers))[: len(headers)]
                source.dataset.append(cells)
                source.line_numbers.append(line)
            line = reader.line_num + 1
    except csv.Error as error:
        raise ContactImportFileError([f"Line {reader.line_num}: the file is not valid CSV ({error})."]) from error
    except UnicodeDecodeError as error:
        raise ContactImportFileError([f"The file is not in the expected text encoding ({error.reason})."]) from error
    return source


def contacts_import(
    *,
    source: ContactImportFile,
    list_name: str = "",
    dry_run: bool = False,
    on_row: Callable[[], None] | None = None,
) -> ContactImportReport:
    """Import the rows of `source`, adding every imported contact to the list `list_name` (created if needed).

    With `dry_run`, everything is checked and counted and then rolled back.
    """
    resource = ContactResource(
        list_name=list_name, line_numbers=source.line_numbers, row_problems=source.row_problems, on_row=on_row
    )
    result = resource.import_data(source.dataset, dry_run=dry_run, raise_errors=False, use_transactions=True)
    if result.base_errors:
        raise ContactImportFileError([str(error.error) for error in result.base_errors])
    rejected = [RejectedRow(line=row.number, reason=validation_reason(row.error)) for row in result.invalid_rows]
    rejected += [
        RejectedRow(line=row.number, reason=f"Unexpected error: {error.error}")
        for row in result.error_rows
        for error in row.errors
    ]
    return ContactImportReport(
        rows=len(source),
        created=result.totals[RowResult.IMPORT_TYPE_NEW],
        updated=result.totals[RowResult.IMPORT_TYPE_UPDATE],
        unchanged=result.totals[RowResult.IMPORT_TYPE_SKIP],
        rejected=sorted(rejected, key=lambda row: row.line),
        blank_lines=source.blank_lines,
        dry_run=dry_run,
        rolled_back=result.has_errors(),
    )
