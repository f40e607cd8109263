"""manage.py bench_alerts: the sweep's figures, and a quiet sweep that costs the same at any size."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Alert, MLAccount

pytestmark = pytest.mark.django_db

LINE = re.compile(
    r"(\d+) accounts: first sweep +\d+ ms, +(\d+) queries, (\d+) alerts fired \| quiet sweep +[\d.]+ ms, "
    r"(\d+) queries, (\d+) fired \| recovery +\d+ ms, (\d+) queries, (\d+) fired \| (\d+) emails"
)


def test_the_bench_prints_the_sweeps_and_leaves_nothing_behind():
    out = StringIO()
    call_command("bench_alerts", "--accounts", "20,60", stdout=out)
    rows = [LINE.search(line) for line in out.getvalue().splitlines()]
    assert all(rows) and len(rows) == 2, out.getvalue()
    small, large = (tuple(int(g) for g in row.groups()) for row in rows)
    for accounts, _first_queries, first_fired, _quiet_queries, quiet_fired, _rq, recovered, emails in (
        small,
        large,
    ):
        expired = accounts // 10
        troubled = 2 * expired  # a tenth expired, a tenth failing
        # each account's new claim, the overdue questions of those not expired (their mirror is
        # stale), and the troubled's reconnect or failing
        assert first_fired == accounts + (accounts - expired) + troubled
        # recovered: the troubled; and the questions of the expired, now that they sync again
        assert quiet_fired == 0 and recovered == troubled + expired
        assert emails == accounts // 10 * 2  # one email each for the owner and the manager
    assert small[3] == large[3]  # the quiet sweep's queries do not grow with the accounts
    assert not MLAccount.objects.exists() and not Alert.objects.exists()  # rolled back
