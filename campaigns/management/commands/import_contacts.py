from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from campaigns.services.contact_imports import ContactImportFileError, contacts_import, contacts_read_csv


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV file whose first line names the columns (phone and/or email, and name, "
        "language, time_zone, sms_consent, whatsapp_consent, email_consent; any other column is a custom "
        "attribute). Contacts are matched by phone, then email, so running it twice changes nothing. Each "
        "rejected row is printed with its line number; the exit status is 1 if any row was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to the CSV file.")
        parser.add_argument(
            "--list", dest="list_name", default="", help="Add the contacts to this list (created if needed)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Check and count everything, save nothing.")
        parser.add_argument("--encoding", default="utf-8-sig", help="The file's text encoding (default: UTF-8).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (it only shows on a terminal).")

    def handle(self, *args, file, list_name, dry_run, encoding, no_progress, **options):
        try:
            with open(file, encoding=encoding, newline="") as handle:
                source = contacts_read_csv(handle)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from error
        except ContactImportFileError as error:
            raise CommandError(f"{file} cannot be imported: {error}") from error

        # disable=None shows the bar on a terminal only, so logs and cron mail stay clean.
        with tqdm(total=len(source), unit="row", desc="Importing", disable=True if no_progress else None) as bar:
            try:
                report = contacts_import(source=source, list_name=list_name, dry_run=dry_run, on_row=bar.update)
            except ContactImportFileError as error:
                raise CommandError(f"{file} cannot be imported: {error}") from error

        for row in report.rejected:
            self.stdout.write(f"Line {row.line}: {row.reason}")
        into = f" into list '{list_name}'" if list_name else ""
        prefix = "Dry run, nothing saved. " if dry_run else ""
        self.stdout.write(f"{prefix}Imported {file}{into}: {report.summary()}")
        if report.rejected or report.rolled_back:
            raise CommandError(f"{len(report.rejected)} row(s) rejected; fix them and run the import again.")
