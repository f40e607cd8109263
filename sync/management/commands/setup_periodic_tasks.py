"""Install the periodic jobs of sync/schedule.py into django-celery-beat (idempotent).

`migrate` alone already creates the missing jobs (sync/apps.py) and never touches
existing ones. This command also repairs: it brings existing jobs back to the code's
task, schedule and expiry by name, and reports what it did; an admin's on/off switch is
kept unless --reset is given.
"""

from django.core.management.base import BaseCommand

from sync import schedule


class Command(BaseCommand):
    help = (
        "Create or update the periodic jobs (dispatch, token refresh, health check, cleanup) in celery beat."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="also switch back on any job an admin switched off"
        )

    def handle(self, *args, reset=False, **options):
        for name, action in schedule.install(reset=reset):
            self.stdout.write(f"{name}: {action}")
        self.stdout.write(self.style.SUCCESS(f"{len(schedule.JOBS)} periodic jobs installed."))
