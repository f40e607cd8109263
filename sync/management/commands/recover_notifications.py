"""Read the notifications Mercado Livre could not deliver: `manage.py recover_notifications`.

The same run the 15-minute job makes (sync.notifications.recover_missed_feeds): every
subscribed topic of `/missed_feeds` (§6.5), `items` once per site, into the intake,
deduplicated by ML's id. The recovered notifications are processed by the worker; with
`--process` this command processes them itself, without a worker.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts import services
from sync import notifications


class Command(BaseCommand):
    help = "Read Mercado Livre's missed notifications (/missed_feeds) into the processing."

    def add_arguments(self, parser):
        parser.add_argument(
            "--process",
            action="store_true",
            help="process the pending notifications here and now instead of leaving them to the worker",
        )

    def handle(self, *args, process=False, **options):
        report = notifications.recover_missed_feeds()
        if report.skipped:
            raise CommandError(f"Nothing recovered: {report.skipped}.")
        self.stdout.write(
            f"{report.fetched} missed notifications read ({report.ml_calls} Mercado Livre calls): "
            f"{report.stored} new, {report.duplicates} already here, {report.foreign} of another "
            f"application, {report.invalid} unreadable."
        )
        for error in report.errors:
            self.stderr.write(f"Not read: {error}")
        if process:
            done = 0
            for account_id in services.notification_accounts_due():
                done += notifications.process_account(account_id).claimed
            self.stdout.write(f"{done} notifications processed.")
        if report.errors:
            raise CommandError("Some topics could not be read; the 15-minute job tries again.")
