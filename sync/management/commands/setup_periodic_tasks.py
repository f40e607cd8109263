"""Install the periodic jobs of sync/schedule.py into django-celery-beat (idempotent).

Run by `make setup` (so by `make run`) and by the compose `migrate` service on every
deploy. Existing jobs are updated by name; an admin's on/off switch is kept unless
--reset is given.
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
