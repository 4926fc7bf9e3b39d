from django.core.management.base import BaseCommand

from analytics.services.rollup import analytics_rollup


class Command(BaseCommand):
    help = (
        "Count the timeline events and STOP replies not counted yet into the analytics rollups, until caught up "
        "(the dispatcher does the same every ANALYTICS_ROLLUP_INTERVAL seconds). Safe beside running dispatchers."
    )

    def handle(self, *args, **options):
        read = analytics_rollup()
        self.stdout.write(f"Rollups up to date: {read} new row(s) counted.")
