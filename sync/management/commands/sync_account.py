"""Sync one account now and print the outcome: `manage.py sync_account <id>`."""

from django.core.management.base import BaseCommand, CommandError

from sync import engine


class Command(BaseCommand):
    help = "Sync one Mercado Livre account now (by its id) and print the result."

    def add_arguments(self, parser):
        parser.add_argument("account_id", help="the account's id (UUID)")

    def handle(self, *args, account_id, **options):
        result = engine.sync_account(account_id)
        if result.outcome == engine.Outcome.MISSING:
            raise CommandError(f"No Mercado Livre account with id {account_id}.")
        if result.outcome == engine.Outcome.SKIPPED:
            raise CommandError("Another sync holds this account right now; try again shortly.")
        if not result.ok:
            raise CommandError(f"Sync failed: {engine.describe(result.error)}")
        counts = result.counts
        self.stdout.write(
            self.style.SUCCESS(
                f"Synced {account_id} at {result.synced_at:%Y-%m-%d %H:%M:%S %Z} "
                f"in {result.duration_ms} ms ({result.ml_calls} Mercado Livre calls): "
                f"{counts.products} active listings, {counts.orders} orders in 30 days, "
                f"{counts.questions} unanswered questions, {counts.claims} open claims."
            )
        )
