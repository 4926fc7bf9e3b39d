from django.core.management.base import BaseCommand, CommandError

from guard.services.price_import import PriceFileError, PricesChangedMeanwhile, prices_import, prices_read_csv


class Command(BaseCommand):
    help = (
        "Load the price list from a CSV file with the columns channel,country,price,currency (ISO country code, "
        "blank for a channel's price to any other country; price per SMS/MMS segment, per message otherwise). "
        "Existing prices are updated; a file with any bad row changes nothing, and each bad row is printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to the CSV file.")
        parser.add_argument("--dry-run", action="store_true", help="Check and count everything, save nothing.")
        parser.add_argument("--encoding", default="utf-8-sig", help="The file's text encoding (default: UTF-8).")

    def handle(self, *args, file, dry_run, encoding, **options):
        try:
            with open(file, encoding=encoding, newline="") as handle:
                rows, rejected = prices_read_csv(handle)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from error
        except LookupError as error:
            raise CommandError(
                f"Unknown --encoding {encoding!r}: name one Python knows, such as utf-8 or cp1252."
            ) from error
        except PriceFileError as error:
            raise CommandError(f"{file} cannot be imported: {error}") from error
        for line, reason in rejected:
            self.stdout.write(f"Line {line}: {reason}")
        if rejected:
            raise CommandError(f"{len(rejected)} row(s) rejected, nothing saved; fix them and run the import again.")
        try:
            report = prices_import(rows, dry_run=dry_run)
        except PricesChangedMeanwhile as error:
            raise CommandError(
                "Someone saved a price for the same destination meanwhile; nothing was imported. Run it again."
            ) from error
        prefix = "Dry run, nothing saved. " if dry_run else ""
        self.stdout.write(f"{prefix}Imported {file}: {report.summary()}")
