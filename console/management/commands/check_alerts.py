from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from console.services.alerts import alerts_check


class Command(BaseCommand):
    help = (
        "Check every alert now (as each dispatcher does every ALERT_CHECK_INTERVAL seconds), send the notices due, "
        "and print one line per alert. Exits 1 only when it cannot check (the database is unreachable)."
    )

    def handle(self, *args, **options):
        try:
            lines = alerts_check()
        except DatabaseError as error:
            reason = " ".join(str(error).split())  # drivers' messages run over several lines
            raise CommandError(f"Cannot check the alerts: the database is unreachable ({reason}).") from error
        for line in lines:
            self.stdout.write(str(line))
