"""Time the alert sweep (the minute job) with many accounts, on throwaway rows rolled back.

    python manage.py bench_alerts                        # 100 and 1,000 accounts
    python manage.py bench_alerts --accounts 100,1000,5000 --runs 10

Each workspace of 10 accounts has an owner, a manager and an operator. Per size, three
sweeps (`accounts.services.alert_rules_evaluate`) are timed and their queries counted:
- **first**: a tenth of the accounts expired, a tenth failing for 7 hours, every account with
  3 questions past the response target and a new claim: everything turns on and fires;
- **quiet**: the same state again: nothing changes, nothing fires (the steady state, every
  minute);
- **recovered**: the expired and failing accounts work again: their states turn off and
  `recovered` fires (and the formerly expired accounts' overdue questions, now that they sync).
Then the emails of the first sweep (`alert_emails_send`, the console or locmem backend:
rendering, not SMTP). The quiet sweep's queries must not grow with the accounts.

Everything is created inside one transaction rolled back at the end; emails go to Django's
in-memory backend, whatever EMAIL_URL says.
"""

import time
from collections import deque
from datetime import timedelta
from unittest import mock

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts import services
from accounts.models import Claim, Membership, MLAccount, Question, Role, User, Workspace
from mlaccounts.management.commands.bench_overview import sizes

PER_WORKSPACE = 10


def _seed(count: int, now) -> list[MLAccount]:
    workspaces = Workspace.objects.bulk_create(
        Workspace(name=f"bench-alerts {i}") for i in range((count + PER_WORKSPACE - 1) // PER_WORKSPACE)
    )
    people = User.objects.bulk_create(
        User(email=f"bench-alerts-{i}-{role}@example.test")
        for i in range(len(workspaces))
        for role in ("owner", "manager", "operator")
    )
    Membership.objects.bulk_create(
        Membership(workspace=workspace, user=people[3 * i + k], role=role)
        for i, workspace in enumerate(workspaces)
        for k, role in enumerate((Role.OWNER, Role.MANAGER, Role.OPERATOR))
    )
    created = now - timedelta(days=30)
    accounts = MLAccount.objects.bulk_create(
        MLAccount(
            workspace=workspaces[i // PER_WORKSPACE],
            ml_user_id=9_100_000_000 + i,
            nickname=f"BENCH_ALERTS_{i}",
            account_name=f"Bench {i}",
            status="expired" if i % 10 == 0 else ("error" if i % 10 == 1 else "active"),
            last_sync_status="failed" if i % 10 in (0, 1) else "success",
            last_sync=now - timedelta(hours=7 if i % 10 in (0, 1) else 0, minutes=1),
            error_count=9 if i % 10 in (0, 1) else 0,
        )
        for i in range(count)
    )
    MLAccount.objects.filter(pk__in=[a.pk for a in accounts]).update(created_at=created)
    Question.objects.bulk_create(
        Question(
            id=9_000_000_000 + 3 * i + k,
            account=account,
            item_id="MLB1",
            text="?",
            date_created=now - timedelta(hours=2),
            seen_at=now,
        )
        for i, account in enumerate(accounts)
        for k in range(3)
    )
    Claim.objects.bulk_create(
        Claim(id=8_000_000_000 + i, account=account, date_created=now - timedelta(hours=1), seen_at=now)
        for i, account in enumerate(accounts)
    )
    return accounts


class Command(BaseCommand):
    help = "Time the alert sweep with many accounts (on rows rolled back)."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", default="100,1000", help="sizes, e.g. 100,1000")
        parser.add_argument("--runs", type=int, default=1, help="quiet sweeps to time (the median)")

    def _sweep(self, now) -> tuple[float, int, int]:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            fired = services.alert_rules_evaluate(now=now)
            elapsed = (time.perf_counter() - started) * 1000
        return elapsed, len(queries), fired

    def handle(self, *args, **options):
        # A burst of alerts runs more queries than Django's log keeps (9,000): keep them all.
        connection.queries_log = deque(maxlen=10**7)
        for count in sizes(options["accounts"]):
            with (
                transaction.atomic(),
                override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
            ):
                now = timezone.now()
                accounts = _seed(count, now)
                first = self._sweep(now)
                quiet = sorted(self._sweep(now) for _ in range(max(1, options["runs"])))[
                    max(1, options["runs"]) // 2
                ]
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    with mock.patch("accounts.services.alert_emails.reconnect_link_for_alert") as link:
                        link.return_value = ("https://example.test/reconnect/x/", now)
                        emails = services.alert_emails_send(now=now, limit=10**6)
                    mailed = (time.perf_counter() - started) * 1000
                troubled = [a.pk for a in accounts if a.status != "active"]
                MLAccount.objects.filter(pk__in=troubled).update(
                    status="active", last_sync_status="success", last_sync=now, error_count=0
                )
                recovered = self._sweep(now + timedelta(minutes=1))
                self.stdout.write(
                    f"{count:>6} accounts: first sweep {first[0]:8.0f} ms, {first[1]:5d} queries, "
                    f"{first[2]} alerts fired | quiet sweep {quiet[0]:6.1f} ms, {quiet[1]} queries, "
                    f"{quiet[2]} fired | recovery {recovered[0]:6.0f} ms, {recovered[1]} queries, "
                    f"{recovered[2]} fired | {emails} emails in {mailed:.0f} ms ({len(queries)} queries)"
                )
                transaction.set_rollback(True)
