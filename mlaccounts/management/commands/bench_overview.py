"""Time the dashboard overview with many accounts, on throwaway rows that are rolled back.

    python manage.py bench_overview            # 100 accounts, 30 timed requests
    python manage.py bench_overview --accounts 500 --runs 50

Everything (a user, its accounts, the session) is created inside one transaction that is
rolled back at the end, so the database the command runs against is left as it was. The
time is the server's: the request goes through every middleware, the view and the template,
with Django's test client (no network, no browser).
"""

import statistics
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import MLAccount, User


class Command(BaseCommand):
    help = "Median server time of the overview page with N accounts (throwaway rows, rolled back)."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=100, help="accounts on the page (default 100)")
        parser.add_argument("--runs", type=int, default=30, help="timed requests (default 30)")
        parser.add_argument("--warmup", type=int, default=3, help="untimed requests first (default 3)")

    def handle(self, *args, **options):
        if options["accounts"] < 1 or options["runs"] < 1:
            raise CommandError("--accounts and --runs must be at least 1")
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("the database is not fully migrated: run `manage.py migrate` first")
        with transaction.atomic():
            user = self._throwaway_rows(options["accounts"])
            timings, queries, size = self._measure(user, options["runs"], options["warmup"])
            # Leave nothing behind, whatever the database is.
            transaction.set_rollback(True)
        median = statistics.median(timings)
        self.stdout.write(
            f"overview with {options['accounts']} accounts, {options['runs']} requests "
            f"({connection.vendor}): median {median:.1f} ms, min {min(timings):.1f} ms, "
            f"max {max(timings):.1f} ms; {queries} queries; {size // 1024} KiB of HTML"
        )
        self.stdout.write("throwaway rows rolled back")

    def _throwaway_rows(self, count: int) -> User:
        now = timezone.now()
        user = User.objects.create_user(email=f"bench-{uuid.uuid4().hex}@example.invalid", password=None)
        workspace = services.workspace_personal(user=user)
        statuses = [MLAccount.Status.ACTIVE] * 7 + [MLAccount.Status.PAUSED, MLAccount.Status.ERROR]
        MLAccount.objects.bulk_create(
            MLAccount(
                workspace=workspace,
                ml_user_id=9_000_000_000 + n,
                nickname=f"BENCH_SELLER_{n}",
                email=f"bench{n}@example.invalid",
                account_name=f"Bench seller {n}",
                status=statuses[n % len(statuses)],
                is_primary=n == 0,
                sync_enabled=statuses[n % len(statuses)] != MLAccount.Status.PAUSED,
                access_token=f"bench-access-{n}",
                refresh_token=f"bench-refresh-{n}",
                token_expires_at=now + timedelta(hours=6) - timedelta(minutes=n),
                token_obtained_at=now - timedelta(minutes=n),
                cached_products=n * 7,
                cached_orders=n * 13,
                cached_questions=n % 5,
                cached_claims=n % 3,
                cached_at=now,
                last_sync=now - timedelta(minutes=n % 9),
                next_sync=now + timedelta(minutes=5 - n % 9),
                last_sync_status="failed" if n % 9 == 8 else "success",
            )
            for n in range(count)
        )
        return user

    def _measure(self, user: User, runs: int, warmup: int) -> tuple[list[float], int, int]:
        host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
        client = Client(HTTP_HOST=host)
        client.force_login(user)
        url = reverse("dashboard:overview")
        secure = settings.SECURE_SSL_REDIRECT
        for _ in range(warmup):
            self._get(client, url, secure)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            response = self._get(client, url, secure)
            timings.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as captured:
            self._get(client, url, secure)
        return timings, len(captured.captured_queries), len(response.content)

    @staticmethod
    def _get(client: Client, url: str, secure: bool):
        response = client.get(url, secure=secure)
        if response.status_code != 200:
            raise CommandError(f"the overview answered {response.status_code}")
        return response
