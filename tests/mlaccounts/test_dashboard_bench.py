"""manage.py bench_overview measures on throwaway rows and leaves the database as it was."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import MLAccount, User

pytestmark = pytest.mark.django_db


def test_bench_overview_reports_a_median_and_rolls_its_rows_back(ml_account):
    users, accounts = User.objects.count(), MLAccount.objects.count()
    out = StringIO()
    call_command("bench_overview", accounts=5, runs=3, warmup=1, stdout=out)
    report = out.getvalue()
    assert re.search(r"overview with 5 accounts, 3 requests \(\w+\): median [0-9.]+ ms", report)
    assert "4 queries" in report  # as pinned by test_dashboard_queries
    assert "rolled back" in report
    assert (User.objects.count(), MLAccount.objects.count()) == (users, accounts)
