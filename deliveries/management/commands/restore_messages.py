from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from deliveries.services.restore import RestoreError, messages_restore


class Command(BaseCommand):
    help = (
        "Bring archived messages back from the files archive_messages wrote, with their ids, values and timelines. "
        "Messages already in the database are skipped, so running it twice restores nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE", help="Archive files (messages-YYYY-MM-DD.jsonl.gz).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (it only shows on a terminal).")

    def handle(self, *args, files, no_progress, **options):
        paths = [Path(name) for name in files]
        total = sum(path.stat().st_size for path in paths if path.is_file())
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="Restoring", disable=True if no_progress else None)

        def progress(bytes_read: int, restored: int) -> None:
            bar.update(bytes_read - bar.n)
            bar.set_postfix(messages=restored, refresh=False)

        try:
            report = messages_restore(paths=paths, on_progress=progress)
        except RestoreError as error:
            raise CommandError(str(error)) from error
        finally:
            bar.close()
        self.stdout.write(
            f"Restored {report.messages} message(s) and {report.events} event(s); "
            f"{report.already_present} message(s) were already in the database."
        )
        if report.erased:
            self.stdout.write(
                f"{report.erased} of them restored blank: their recipients' data was erased after these files were "
                "written (recipient, texts and timeline details emptied)."
            )
        for link, messages in report.unlinked.most_common():
            self.stdout.write(f"{messages} message(s) restored without their {link}: it was deleted since.")
        for path in report.unfinished:
            self.stdout.write(
                f"{path} ends in a chunk an interrupted archive run left unfinished: its messages were never "
                "deleted, and archive_messages cuts it off when it next writes to the file."
            )
        if report.waiting:
            shown = ", ".join(f"#{pk} (needs #{parent})" for pk, parent in sorted(report.waiting.items())[:10])
            raise CommandError(
                f"{len(report.waiting)} message(s) not restored: each depends on a message in none of these files "
                f"and not in the database: {shown}. Restore them with the file of that message's day."
            )
