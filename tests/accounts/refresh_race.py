"""A token refresh that ML holds open, and the proof that it locks nothing else.

`BlockedTokenEndpoint` answers ML's token endpoint only once the test releases it (no real
wait: an Event), so a test can act while a refresh is "taking 10 seconds" at ML.

Run as a script (`python -m tests.accounts.refresh_race`) against a real SQLite file given
by DATABASE_URL, it migrates that file and proves, with a short busy timeout so that any
lock would surface as "database is locked": eight threads cause one refresh, and other
accounts can be paused and edited (services and dashboard) while a refresh is blocked.
It prints its findings as JSON for tests/accounts/test_refresh_lease.py.
"""

import threading

from django.db import connection

from tests.mlmock import RotatingTokenEndpoint

WAIT = 30  # seconds before a test gives up on an event that should come at once


class BlockedTokenEndpoint(RotatingTokenEndpoint):
    """The rotating token endpoint, holding every answer until `release` is set."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, request):
        self.entered.set()
        self.release.wait(WAIT)
        return super().__call__(request)


def in_thread(call) -> tuple[threading.Thread, dict]:
    """Start `call` in a thread with its own connection; the dict gets its result or error."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = call()
        except Exception as exc:  # handed to the test
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _main() -> dict:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlaccounts.settings")
    django.setup()
    from datetime import timedelta

    import responses
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse
    from django.utils import timezone

    from accounts import services, tokens
    from accounts.models import MLAccount
    from tests.factories import MLAccountFactory, UserFactory
    from tests.mlmock import API
    from tests.threads import run_together

    options = settings.DATABASES["default"]["OPTIONS"]
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert options["transaction_mode"] == "IMMEDIATE"
    # A lock held across the blocked refresh would fail the writes below after 2 s.
    options["timeout"] = 2
    options["init_command"] = options["init_command"].replace("busy_timeout=20000", "busy_timeout=2000")
    setup_test_environment()
    settings.ML_API_URL = API
    settings.ML_CLIENT_ID, settings.ML_CLIENT_SECRET = "123", "s3cret"
    settings.ML_REQUESTS_PER_SECOND = 0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)
    findings: dict = {"journal_mode": connection.cursor().execute("PRAGMA journal_mode").fetchone()[0]}

    user = UserFactory(email="alice@example.com")
    past = timezone.now() - timedelta(minutes=1)

    # Eight callers at once: exactly one refresh at ML, all get its token.
    account = MLAccountFactory(owner=user, token_expires_at=past)
    with responses.RequestsMock() as rsps:
        endpoint = RotatingTokenEndpoint(user_id=account.ml_user_id, current_refresh=account.refresh_token)
        endpoint.install(rsps)
        results, errors = run_together([lambda: tokens.get_fresh_access_token(account.pk)] * 8, timeout=WAIT)
    account.refresh_from_db()
    findings["eight"] = {
        "errors": [repr(e) for e in errors],
        "ml_calls": endpoint.calls,
        "invalid_grants": endpoint.invalid_grants,
        "all_got_the_stored_token": results == [account.access_token] * 8,
        "refresh_token_saved": account.refresh_token == endpoint.current,
    }

    # A refresh that ML holds open; meanwhile other accounts are paused and edited.
    slow = MLAccountFactory(owner=user, token_expires_at=past)
    other, third = MLAccountFactory(owner=user), MLAccountFactory(owner=user)
    client = Client()
    client.force_login(user)
    writes: dict = {}
    with responses.RequestsMock() as rsps:
        endpoint = BlockedTokenEndpoint(user_id=slow.ml_user_id, current_refresh=slow.refresh_token)
        endpoint.install(rsps)
        thread, outcome = in_thread(lambda: tokens.get_fresh_access_token(slow.pk))
        try:
            findings["refresh_started"] = endpoint.entered.wait(WAIT)
            for name, write in {
                "service_pause": lambda: services.mlaccount_pause(account=other),
                "service_update": lambda: services.mlaccount_update(account=third, account_name="Renamed"),
                "view_pause": lambda: (
                    client.post(reverse("dashboard:account_pause", args=[third.pk])).status_code
                ),
                "view_settings": lambda: (
                    client.post(
                        reverse("dashboard:account", args=[other.pk]),
                        {
                            "account_name": "Edited",
                            "account_type": "store",
                            "interval_value": "2",
                            "interval_unit": "minutes",
                        },
                    ).status_code
                ),
            }.items():
                try:
                    result = write()
                    writes[name] = result if isinstance(result, int) else "ok"
                except Exception as exc:
                    writes[name] = repr(exc)
            findings["still_blocked_after_writes"] = thread.is_alive() and not endpoint.release.is_set()
        finally:
            endpoint.release.set()
            thread.join(WAIT)
    findings["writes"] = writes
    findings["slow_refresh"] = repr(outcome.get("error")) if "error" in outcome else "ok"
    findings["rows"] = {
        "other": list(
            MLAccount.objects.filter(pk=other.pk).values_list("status", "account_name", "sync_interval")[0]
        ),
        "third": list(MLAccount.objects.filter(pk=third.pk).values_list("status", "account_name")[0]),
    }
    return findings


if __name__ == "__main__":
    import json

    print(json.dumps(_main()))
