"""The alert tasks: a sync that finds a dead grant emails at once, the minute job sweeps and
sends, the daily job sends the digests. ML is mocked at the HTTP boundary."""

import re
from datetime import timedelta

import pytest
import responses
from django.core import mail
from django.utils import timezone

from accounts import services
from accounts.models import Alert, AlertChannel, AlertKind, Membership
from sync import tasks
from tests.desk_helpers import ask
from tests.mlmock import API

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ml_settings")]

ITEMS = re.compile(API + r"/users/\d+/items/search")


def _dead_grant(ml):
    ml.add(responses.GET, ITEMS, json={"message": "invalid", "status": 401, "cause": []}, status=401)
    ml.add(
        responses.POST,
        API + "/oauth/token",
        json={"error": "invalid_grant", "error_description": "used", "status": 400, "cause": []},
        status=400,
    )


def test_a_sync_that_finds_a_dead_grant_emails_its_owner_at_once(
    ml_account, ml, eager, user, django_capture_on_commit_callbacks
):
    _dead_grant(ml)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sync_account.delay(str(ml_account.pk)).get() == "failed"

    [alert] = Alert.objects.all()
    assert (alert.kind, alert.account_id) == (AlertKind.RECONNECT, ml_account.pk)
    [email] = mail.outbox
    assert email.to == [user.email]
    assert "/reconnect/" in email.body  # the owner may manage the account: a link to restore it
    # the next sync finds the same dead grant: nothing new
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sync_account.delay(str(ml_account.pk)).get() == "failed"
    assert Alert.objects.count() == 1 and len(mail.outbox) == 1


def test_the_minute_job_sweeps_and_sends(ml_account, user):
    ml_account.workspace.response_target_minutes = 30
    ml_account.workspace.save()
    ask(ml_account, age=timedelta(hours=1))

    assert tasks.evaluate_alerts.run() == 1
    assert tasks.evaluate_alerts.run() == 0

    [email] = mail.outbox
    assert email.to == [user.email] and ml_account.account_name in email.body


def test_the_daily_job_sends_the_digests(ml_account, user):
    membership = Membership.objects.get(user=user, workspace=ml_account.workspace)
    services.membership_set_alert_channels(
        membership=membership, channels=dict.fromkeys(AlertKind.values, AlertChannel.DIGEST)
    )
    ml_account.workspace.response_target_minutes = 30
    ml_account.workspace.save()
    ask(ml_account, age=timedelta(hours=1))
    tasks.evaluate_alerts.run()
    assert mail.outbox == []

    assert tasks.send_alert_digests.run() == 1

    [digest] = mail.outbox
    assert digest.to == [user.email] and ml_account.account_name in digest.body
    assert tasks.send_alert_digests.run() == 0


def test_old_alerts_are_cleaned_up(ml_account, user):
    ml_account.workspace.response_target_minutes = 30
    ml_account.workspace.save()
    ask(ml_account, age=timedelta(hours=1))
    tasks.evaluate_alerts.run()
    Alert.objects.update(created_at=timezone.now() - timedelta(days=services.ALERT_RETENTION_DAYS + 1))

    tasks.cleanup_events.run()

    assert not Alert.objects.exists()
    user.refresh_from_db()
    assert user.unread_alerts == 0
