import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from deliveries.archiving.day_files import ArchiveFileError
from deliveries.services.archive import CHUNK_SIZE, archive_candidates, archive_cutoff, messages_archive

AGE = re.compile(r"([0-9]{1,5})([dh])")


def age_parse(text: str) -> timedelta:
    """`90d` or `240h` as a timedelta; ValueError with what to write instead."""
    match = AGE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"--older-than {text!r}: give days or hours, like 90d or 240h.")
    number, unit = int(match[1]), match[2]
    return timedelta(days=number) if unit == "d" else timedelta(hours=number)


class Command(BaseCommand):
    help = (
        "Archive finished messages (delivered, undelivered, failed, cancelled, suppressed) older than --older-than, "
        "with their timelines, to gzip JSON Lines files (one per day: DIR/messages-YYYY-MM-DD.jsonl.gz), then delete "
        "them from the database a chunk at a time. Safe to stop and run again. restore_messages brings them back."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, metavar="AGE", help="Like 90d (days) or 240h (hours).")
        parser.add_argument("--to", default="", metavar="DIR", help="Directory for the files (default ARCHIVE_DIR).")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be archived; change nothing.")
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=CHUNK_SIZE,
            metavar="N",
            help=f"Messages per transaction (default {CHUNK_SIZE}): smaller holds each lock for less time.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (it only shows on a terminal).")

    def handle(self, *args, older_than, to, dry_run, chunk_size, no_progress, **options):
        directory = Path(to or settings.ARCHIVE_DIR)
        if not 1 <= chunk_size <= 100_000:
            raise CommandError(f"--chunk-size {chunk_size}: give 1 to 100000.")
        try:
            age = age_parse(older_than)
            cutoff = archive_cutoff(age)
        except ValueError as error:
            raise CommandError(str(error)) from error
        total = archive_candidates(cutoff).count()
        bar = tqdm(
            total=total, unit="msg", desc="Dry run" if dry_run else "Archiving", disable=True if no_progress else None
        )
        try:
            report = messages_archive(
                older_than=age,
                directory=directory,
                dry_run=dry_run,
                chunk_size=chunk_size,
                on_chunk=lambda chunk: bar.update(chunk.looked_at),
            )
        except ArchiveFileError as error:
            raise CommandError(
                f"{error} Nothing of the chunk it was writing was deleted: run it again after."
            ) from error
        finally:
            bar.close()
        verb = "Would archive" if dry_run else "Archived"
        self.stdout.write(
            f"{verb} {report.messages} message(s) and {report.events} event(s) created before "
            f"{cutoff:%Y-%m-%d %H:%M} UTC into {len(report.files)} file(s) in {directory}."
        )
        for path, messages in sorted(report.files.items()):
            self.stdout.write(f"  {path}: {messages} message(s)")
        for reason, messages in report.held.most_common():
            self.stdout.write(f"Kept {messages} message(s): {reason}.")
        if dry_run:
            self.stdout.write("Dry run: nothing was written or deleted.")
