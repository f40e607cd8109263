"""manage.py bench_overview measures on throwaway rows and leaves the database as it was."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import MLAccount, User
from tests.mlaccounts.test_dashboard_queries import OVERVIEW_QUERIES

pytestmark = pytest.mark.django_db


def test_bench_overview_reports_each_size_and_the_idle_tab_and_rolls_its_rows_back(ml_account):
    users, accounts = User.objects.count(), MLAccount.objects.count()
    out = StringIO()
    call_command("bench_overview", accounts=[3, 60], runs=2, warmup=1, idle_tab=60, stdout=out)
    report = out.getvalue()
    for size in (3, 60):
        line = re.search(rf"overview with {size} accounts, 2 requests \(\w+\): median [0-9.]+ ms.*", report)
        assert line and f"; {OVERVIEW_QUERIES} queries;" in line.group(0)
    assert re.search(r"time at 60 accounts / time at 3: [0-9.]+x", report)
    idle = re.search(r"tab watching 60 accounts .*nothing changing\): ([0-9.]+) MB sent.*", report).group(0)
    assert "360 × 304, 0 × changed rows, 0 × whole list" in idle
    busy = re.search(r"tab watching 60 accounts .*one row changing every poll\).*", report).group(0)
    assert "0 × 304, 360 × changed rows, 0 × whole list" in busy
    assert "rolled back" in report
    assert (User.objects.count(), MLAccount.objects.count()) == (users, accounts)


def test_bench_overview_refuses_nonsense_sizes():
    with pytest.raises(CommandError):
        call_command("bench_overview", "--accounts", "ten", stdout=StringIO())
