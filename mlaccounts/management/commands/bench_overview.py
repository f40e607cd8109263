"""Time the dashboard overview with many accounts, and weigh its live refresh, on throwaway
rows that are rolled back.

    python manage.py bench_overview                          # 10, 100 and 1,000 accounts
    python manage.py bench_overview --accounts 10,100,1000 --runs 30
    python manage.py bench_overview --idle-tab 500           # the bytes an idle tab costs an hour

One line per size: the median server time of the overview page and its query count, which
must not grow with the accounts (the page renders one page of rows). Then one idle tab
watching `--idle-tab` accounts for an hour of polls (every POLL_SECONDS, the clock moved on
between polls, nothing changing): the bytes the server sent it (status line, headers and
body), and how many polls were answered 304.

Everything (users, accounts, sessions) is created inside one transaction that is rolled
back at the end, so the database the command runs against is left as it was. The time is
the server's: the request goes through every middleware, the view and the template, with
Django's test client (no network, no browser).
"""

import re
import statistics
import time
import uuid
from datetime import timedelta
from html import unescape as html_unescape
from unittest import mock

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import MLAccount, User

POLL_SECONDS = 10  # hx-trigger="every 10s" in _partials/_account_list.html
HOUR = 3600


def sizes(value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise CommandError("--accounts takes whole numbers separated by commas, e.g. 10,100,1000") from None
    if not counts or min(counts) < 1:
        raise CommandError("--accounts must be at least 1")
    return counts


def wire_bytes(response) -> int:
    """What the response weighs on the wire: status line, headers, blank line, body."""
    status = f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n"
    headers = "".join(f"{name}: {value}\r\n" for name, value in response.items())
    cookies = "".join(f"{cookie.output(header='Set-Cookie:')}\r\n" for cookie in response.cookies.values())
    return len((status + headers + cookies + "\r\n").encode()) + len(response.content)


class ShownPage:
    """What a tab shows, read from the HTML as app.js reads it: the versions it sends."""

    VERSION = re.compile(r'id="account-([0-9a-f-]+)" data-v="([0-9a-f]+)"')

    def __init__(self, html: str):
        self.etag = html_unescape(re.search(r'data-etag="([^"]*)"', html).group(1))
        self.layout = re.search(r'data-layout="([^"]*)"', html).group(1)
        self.totals = re.search(r'id="totals" data-v="([^"]*)"', html).group(1)
        self.rows = dict(self.VERSION.findall(html))

    def header(self) -> str:
        return f"{self.layout};{self.totals};{','.join(self.rows.values())}"

    def apply_delta(self, html: str, etag: str) -> None:
        for pk, version in self.VERSION.findall(html):
            self.rows[pk] = version
        totals = re.search(r'id="totals" data-v="([^"]*)"', html)
        if totals:
            self.totals = totals.group(1)
        self.etag = etag


class Command(BaseCommand):
    help = "Median server time and queries of the overview for N accounts; bytes an hour of an idle tab."

    def add_arguments(self, parser):
        parser.add_argument(
            "--accounts",
            type=sizes,
            default=[10, 100, 1000],
            help="sizes, comma-separated (default 10,100,1000)",
        )
        parser.add_argument("--runs", type=int, default=20, help="timed requests per size (default 20)")
        parser.add_argument("--warmup", type=int, default=3, help="untimed requests first (default 3)")
        parser.add_argument(
            "--idle-tab",
            type=int,
            default=500,
            help="accounts watched by the idle tab (default 500; 0: skip)",
        )

    def handle(self, *args, **options):
        if options["runs"] < 1 or options["idle_tab"] < 0:
            raise CommandError("--runs must be at least 1 and --idle-tab at least 0")
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("the database is not fully migrated: run `manage.py migrate` first")
        medians = {}
        with transaction.atomic():
            for count in options["accounts"]:
                user = self._throwaway_rows(count)
                timings, queries, size = self._measure(user, options["runs"], options["warmup"])
                medians[count] = statistics.median(timings)
                self.stdout.write(
                    f"overview with {count} accounts, {options['runs']} requests ({connection.vendor}): "
                    f"median {medians[count]:.1f} ms, min {min(timings):.1f} ms, max {max(timings):.1f} ms; "
                    f"{queries} queries; {size // 1024} KiB of HTML"
                )
            if len(medians) > 1:
                small, large = min(medians), max(medians)
                self.stdout.write(
                    f"time at {large} accounts / time at {small}: {medians[large] / medians[small]:.2f}x"
                )
            if options["idle_tab"]:
                self._idle_tab(self._throwaway_rows(options["idle_tab"]), options["idle_tab"])
            # Leave nothing behind, whatever the database is.
            transaction.set_rollback(True)
        self.stdout.write("throwaway rows rolled back")

    def _idle_tab(self, user: User, count: int) -> None:
        """An hour of one tab's polls, as app.js sends them, nothing changing; then the same
        with one row of its page changing before every poll (a sync landing)."""
        for changing in (False, True):
            sent, answers, first = self._watch(user, changing=changing)
            what = "one row changing every poll" if changing else "nothing changing"
            self.stdout.write(
                f"tab watching {count} accounts for an hour ({HOUR // POLL_SECONDS} polls every "
                f"{POLL_SECONDS} s, {what}): {sent / 1_000_000:.2f} MB sent ({sent:,} bytes, the page "
                f"load of {first // 1024} KiB included); answers: "
                + ", ".join(f"{n} × {kind}" for kind, n in sorted(answers.items()))
            )

    def _watch(self, user: User, *, changing: bool) -> tuple[int, dict, int]:
        client = self._client(user)
        page = self._get(client, reverse("dashboard:overview"))
        shown = ShownPage(page.content.decode())
        sent, answers = wire_bytes(page), {"304": 0, "changed rows": 0, "whole list": 0}
        started = timezone.now()
        url = reverse("dashboard:overview_list")
        ids = list(shown.rows)
        for poll in range(1, HOUR // POLL_SECONDS + 1):
            at = started + timedelta(seconds=poll * POLL_SECONDS)
            if changing:  # a sync of one of the page's accounts lands: its counts move
                MLAccount.objects.filter(pk=ids[poll % len(ids)]).update(
                    cached_orders=F("cached_orders") + 1, last_sync=at, updated_at=at
                )
            headers = {"HX-Request": "true", "If-None-Match": shown.etag, "X-Overview-Rows": shown.header()}
            with mock.patch("django.utils.timezone.now", return_value=at):
                response = client.get(url, headers=headers, secure=settings.SECURE_SSL_REDIRECT)
            if response.status_code == 304:
                answers["304"] += 1
            elif response.status_code == 200 and response.get("X-Overview-Delta"):
                answers["changed rows"] += 1
                shown.apply_delta(response.content.decode(), response["ETag"])
            elif response.status_code == 200:
                answers["whole list"] += 1
                shown = ShownPage(response.content.decode())
            else:
                raise CommandError(f"the list answered {response.status_code}")
            sent += wire_bytes(response)
        return sent, answers, wire_bytes(page)

    def _throwaway_rows(self, count: int) -> User:
        # ML user ids are unique installation-wide: each size gets a range of its own.
        first_id = 9_000_000_000 + getattr(self, "_made", 0)
        self._made = getattr(self, "_made", 0) + count
        now = timezone.now()
        user = User.objects.create_user(email=f"bench-{uuid.uuid4().hex}@example.invalid", password=None)
        workspace = services.workspace_personal(user=user)
        statuses = [MLAccount.Status.ACTIVE] * 7 + [MLAccount.Status.PAUSED, MLAccount.Status.ERROR]
        MLAccount.objects.bulk_create(
            MLAccount(
                workspace=workspace,
                ml_user_id=first_id + n,
                nickname=f"BENCH_SELLER_{n}",
                email=f"bench{n}@example.invalid",
                account_name=f"Bench seller {n}",
                status=statuses[n % len(statuses)],
                is_primary=n == 0,
                sync_enabled=statuses[n % len(statuses)] != MLAccount.Status.PAUSED,
                access_token=f"bench-access-{n}",
                refresh_token=f"bench-refresh-{n}",
                token_expires_at=now + timedelta(hours=6) - timedelta(seconds=n),
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

    @staticmethod
    def _client(user: User) -> Client:
        host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
        client = Client(HTTP_HOST=host)
        client.force_login(user)
        return client

    def _measure(self, user: User, runs: int, warmup: int) -> tuple[list[float], int, int]:
        client = self._client(user)
        url = reverse("dashboard:overview")
        for _ in range(warmup):
            self._get(client, url)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            response = self._get(client, url)
            timings.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as captured:
            self._get(client, url)
        return timings, len(captured.captured_queries), len(response.content)

    @staticmethod
    def _get(client: Client, url: str):
        response = client.get(url, secure=settings.SECURE_SSL_REDIRECT)
        if response.status_code != 200:
            raise CommandError(f"the overview answered {response.status_code}")
        return response
