"""Alert rules (accounts.services.alerts): each fires once per change of state, to the members
who should hear of it, by the channel they chose."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from accounts import selectors, services
from accounts.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    AlertSubscription,
    DeliveryEmail,
    Membership,
    ReputationSnapshot,
    Role,
)
from tests.desk_helpers import ask, claim
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def agency(db):
    """An agency workspace: alice owns it, mary manages, otto operates, vera views."""
    workspace = WorkspaceFactory(name="Agência Sul")
    cast = {}
    for name, role in (
        ("alice", Role.OWNER),
        ("mary", Role.MANAGER),
        ("otto", Role.OPERATOR),
        ("vera", Role.VIEWER),
    ):
        cast[name] = UserFactory(email=f"{name}@agency.test")
        member(workspace, cast[name], role)
    account = MLAccountFactory(workspace=workspace, nickname="LOJA_SUL", account_name="Loja Sul")
    return workspace, account, cast


def _expire(account):
    services.mlaccount_record_sync_failure(
        account_id=account.pk, kind="auth", message="invalid_grant", http_status=400, auth_failure=True
    )


def _succeed(account, at=None):
    at = at or timezone.now()
    type(account).objects.filter(pk=account.pk).update(
        status="active", last_sync_status="success", last_sync=at, error_count=0
    )


def _alerts(kind=None):
    alerts = Alert.objects.all()
    return list(alerts.filter(kind=kind) if kind else alerts)


def test_a_dead_grant_fires_once_and_not_again_on_the_next_syncs(agency):
    workspace, account, _cast = agency
    _expire(account)
    _expire(account)  # the next sync finds the same dead grant
    services.alert_rules_evaluate()  # and so does the sweep
    [alert] = _alerts(AlertKind.RECONNECT)
    assert alert.workspace == workspace and alert.account == account and alert.account_label == "Loja Sul"
    assert alert.params["error"] == "invalid_grant"
    deliveries = {d.user.email: d.email for d in AlertDelivery.objects.select_related("user")}
    # owners and managers by email at once, operators and viewers in the inbox
    assert deliveries == {
        "alice@agency.test": DeliveryEmail.PENDING,
        "mary@agency.test": DeliveryEmail.PENDING,
        "otto@agency.test": DeliveryEmail.NONE,
        "vera@agency.test": DeliveryEmail.NONE,
    }


def test_recovery_fires_once_and_a_second_death_fires_again(agency):
    _workspace, account, _cast = agency
    _expire(account)
    _succeed(account)
    assert services.alert_rules_evaluate() == 1
    assert services.alert_rules_evaluate() == 0
    [recovered] = _alerts(AlertKind.RECOVERED)
    assert recovered.params == {"was": AlertKind.RECONNECT}
    _expire(account)
    assert len(_alerts(AlertKind.RECONNECT)) == 2


def test_a_reconnect_is_a_recovery(agency):
    _workspace, account, _cast = agency
    _expire(account)
    type(account).objects.filter(pk=account.pk).update(status="active", error_count=0)  # as a reconnect does
    assert services.alert_rules_evaluate() == 1
    assert _alerts(AlertKind.RECOVERED)[0].params == {"was": AlertKind.RECONNECT}


def test_a_paused_account_is_not_recovered(agency):
    _workspace, account, _cast = agency
    _expire(account)
    type(account).objects.filter(pk=account.pk).update(status="paused", sync_enabled=False)
    services.alert_rules_evaluate()
    assert _alerts(AlertKind.RECOVERED) == []


def test_failing_fires_after_the_workspaces_hours_once(agency):
    workspace, account, _cast = agency
    now = timezone.now()
    workspace.failing_alert_hours = 6
    workspace.save()
    type(account).objects.filter(pk=account.pk).update(
        status="error", last_sync_status="failed", last_sync=now - timedelta(hours=5), error_count=9
    )
    assert services.alert_rules_evaluate(now=now) == 0
    later = now + timedelta(hours=1, minutes=1)
    assert services.alert_rules_evaluate(now=later) == 1
    assert services.alert_rules_evaluate(now=later + timedelta(minutes=1)) == 0
    [alert] = _alerts(AlertKind.FAILING)
    assert alert.params["hours"] >= 6
    _succeed(account, at=later + timedelta(minutes=2))
    assert services.alert_rules_evaluate(now=later + timedelta(minutes=3)) == 1
    assert _alerts(AlertKind.RECOVERED)[0].params == {"was": AlertKind.FAILING}


def test_overdue_questions_are_grouped_per_account_and_each_counts_once(agency):
    workspace, account, _cast = agency
    workspace.response_target_minutes = 60
    workspace.save()
    old = [ask(account, age=timedelta(hours=2)) for _ in range(3)]
    ask(account, age=timedelta(minutes=10))  # within the target
    assert services.alert_rules_evaluate() == 1
    [alert] = _alerts(AlertKind.QUESTION_OVERDUE)
    assert alert.params["count"] == 3 and sorted(alert.params["ids"]) == sorted(q.id for q in old)
    assert services.alert_rules_evaluate() == 0
    ask(account, age=timedelta(hours=3))
    assert services.alert_rules_evaluate() == 1
    assert _alerts(AlertKind.QUESTION_OVERDUE)[0].params["count"] == 1


def test_answered_questions_are_not_overdue(agency):
    _workspace, account, _cast = agency
    ask(account, age=timedelta(hours=5), status="ANSWERED")
    assert services.alert_rules_evaluate() == 0


def test_a_claim_opened_after_connecting_is_new_once_the_backlog_is_not(agency):
    _workspace, account, _cast = agency
    claim(account, date_created=account.created_at - timedelta(hours=1))  # open when connected
    fresh = claim(account, date_created=timezone.now())
    assert services.alert_rules_evaluate() == 1
    [alert] = _alerts(AlertKind.NEW_CLAIM)
    assert alert.params == {"count": 1, "ids": [fresh.id]}
    assert services.alert_rules_evaluate() == 0


def _reputation(account, day, level, claims="0.001"):
    return ReputationSnapshot.objects.create(
        account=account,
        day=day,
        taken_at=timezone.now(),
        level_id=level,
        claims_rate=Decimal(claims),
        delayed_handling_rate=Decimal("0.01"),
        cancellations_rate=Decimal("0.001"),
    )


def test_a_colour_drop_and_a_rate_near_its_limit_fire_once(agency):
    _workspace, account, _cast = agency
    _reputation(account, date(2026, 12, 1), "5_green")
    _reputation(account, date(2026, 12, 2), "4_light_green", claims="0.028")
    alert = services.alert_reputation_check(account_id=account.pk)
    assert alert.params["drop"] == ["5_green", "4_light_green"]
    assert [r["metric"] for r in alert.params["rates"]] == ["claims"]
    assert alert.params["rates"][0]["over"] is False
    # the same day read again: nothing new
    assert services.alert_reputation_check(account_id=account.pk) is None
    # the next day, still near the limit and no drop: nothing
    _reputation(account, date(2026, 12, 3), "4_light_green", claims="0.029")
    assert services.alert_reputation_check(account_id=account.pk) is None
    # back under the margin, then near again: a new change
    _reputation(account, date(2026, 12, 4), "4_light_green", claims="0.001")
    assert services.alert_reputation_check(account_id=account.pk) is None
    _reputation(account, date(2026, 12, 5), "4_light_green", claims="0.031")
    again = services.alert_reputation_check(account_id=account.pk)
    assert again.params["rates"][0]["over"] is True and "drop" not in again.params


def test_unsubscribed_members_get_nothing(agency):
    workspace, account, cast = agency
    for name in ("alice", "mary", "otto", "vera"):
        membership = Membership.objects.get(workspace=workspace, user=cast[name])
        services.membership_set_alert_channels(membership=membership, channels={AlertKind.RECONNECT: "off"})
    _expire(account)
    assert len(_alerts(AlertKind.RECONNECT)) == 1  # kept as the workspace's history
    assert not AlertDelivery.objects.exists()
    services.alert_emails_send()
    assert mail.outbox == []


def test_a_kind_switched_off_for_the_workspace_fires_nothing(agency):
    workspace, account, _cast = agency
    enabled = [kind for kind in AlertKind.values if kind != AlertKind.RECONNECT]
    services.workspace_set_alert_rules(workspace=workspace, enabled=enabled, failing_hours=6)
    _expire(account)
    assert _alerts() == []


def test_the_accounts_flags_are_honoured(agency):
    _workspace, account, _cast = agency
    type(account).objects.filter(pk=account.pk).update(email_notifications_enabled=False)
    _expire(account)
    assert set(AlertDelivery.objects.values_list("email", flat=True)) == {DeliveryEmail.NONE}
    assert AlertDelivery.objects.count() == 4
    other = MLAccountFactory(workspace=account.workspace, notifications_enabled=False)
    _expire(other)
    assert Alert.objects.filter(account=other).count() == 0


def test_a_scoped_member_hears_only_of_their_accounts(agency):
    workspace, account, _cast = agency
    other = MLAccountFactory(workspace=workspace)
    scoped = UserFactory(email="sam@agency.test")
    member(workspace, scoped, Role.MANAGER, accounts=[other])
    _expire(account)
    assert not AlertDelivery.objects.filter(user=scoped).exists()
    _expire(other)
    assert AlertDelivery.objects.filter(user=scoped).count() == 1


def test_emails_go_once_per_member_with_every_alert_waiting(agency):
    workspace, account, cast = agency
    second = MLAccountFactory(workspace=workspace, account_name="Loja Norte")
    _expire(account)
    _expire(second)
    assert services.alert_emails_send() == 2  # alice and mary, one email each
    assert services.alert_emails_send() == 0
    by_recipient = {message.to[0]: message for message in mail.outbox}
    assert set(by_recipient) == {"alice@agency.test", "mary@agency.test"}
    body = by_recipient["mary@agency.test"].body
    assert "Loja Sul" in body and "Loja Norte" in body
    assert "2" in by_recipient["mary@agency.test"].subject
    assert set(AlertDelivery.objects.filter(user=cast["mary"]).values_list("email", flat=True)) == {"sent"}


def test_the_digest_groups_the_days_alerts_by_workspace_and_account(agency):
    workspace, account, cast = agency
    membership = Membership.objects.get(workspace=workspace, user=cast["mary"])
    services.membership_set_alert_channels(
        membership=membership, channels=dict.fromkeys(AlertKind.values, AlertChannel.DIGEST)
    )
    second = MLAccountFactory(workspace=workspace, account_name="Loja Norte")
    _expire(account)
    _expire(second)
    claim(account, date_created=timezone.now())
    services.alert_rules_evaluate()
    services.alert_emails_send()
    assert "mary@agency.test" not in {m.to[0] for m in mail.outbox}  # not at once
    mail.outbox.clear()
    assert services.alert_digests_send(now=timezone.now() + timedelta(seconds=1)) == 1
    [digest] = mail.outbox
    assert digest.to == ["mary@agency.test"] and "3" in digest.subject
    body = digest.body
    assert body.count("== Agência Sul ==") == 1
    assert body.count("-- Loja Sul") == 1 and body.count("-- Loja Norte") == 1
    assert services.alert_digests_send(now=timezone.now() + timedelta(seconds=2)) == 0


def test_emails_are_in_the_members_language(agency):
    _workspace, account, cast = agency
    type(cast["mary"]).objects.filter(pk=cast["mary"].pk).update(language="en")
    _expire(account)
    services.alert_emails_send()
    by_recipient = {message.to[0]: message for message in mail.outbox}
    assert "no longer accepts the authorization" in by_recipient["mary@agency.test"].body


def test_a_failed_send_marks_the_deliveries_and_keeps_the_inbox(agency, settings, monkeypatch):
    _workspace, account, cast = agency
    _expire(account)

    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    assert services.alert_emails_send() == 0
    assert set(AlertDelivery.objects.filter(user=cast["alice"]).values_list("email", flat=True)) == {"failed"}
    assert selectors.alert_inbox(user=cast["alice"]).count() == 1


def test_the_unread_count_follows_the_inbox(agency):
    _workspace, account, cast = agency
    _expire(account)
    _succeed(account)
    services.alert_rules_evaluate()
    alice = cast["alice"]
    alice.refresh_from_db()
    assert alice.unread_alerts == 2
    first = selectors.alert_inbox(user=alice).last()
    assert services.alert_mark_read(user=alice, delivery_ids=[first.pk]) == 1
    assert services.alert_mark_read(user=alice) == 0
    alice.refresh_from_db()
    assert alice.unread_alerts == 0


def test_a_member_who_left_no_longer_reads_the_workspaces_alerts(agency):
    workspace, account, cast = agency
    _expire(account)
    Membership.objects.filter(workspace=workspace, user=cast["otto"]).delete()
    assert selectors.alert_inbox(user=cast["otto"]).count() == 0


def test_a_members_channels_default_to_their_role(agency):
    workspace, _account, cast = agency
    owner = Membership.objects.get(workspace=workspace, user=cast["alice"])
    viewer = Membership.objects.get(workspace=workspace, user=cast["vera"])
    assert set(selectors.alert_channels(membership=owner).values()) == {AlertChannel.INSTANT}
    assert set(selectors.alert_channels(membership=viewer).values()) == {AlertChannel.INBOX}
    services.membership_set_alert_channels(membership=viewer, channels={AlertKind.NEW_CLAIM: "instant"})
    services.membership_set_alert_channels(membership=viewer, channels={AlertKind.NEW_CLAIM: "inbox"})
    assert not AlertSubscription.objects.filter(membership=viewer).exists()  # the default is no row


def test_bad_settings_are_refused(agency):
    workspace, _account, cast = agency
    with pytest.raises(services.AlertSettingsError) as error:
        services.workspace_set_alert_rules(workspace=workspace, enabled=["nope"], failing_hours="0")
    assert set(error.value.errors) == {"enabled", "failing_hours"}
    membership = Membership.objects.get(workspace=workspace, user=cast["alice"])
    with pytest.raises(services.AlertSettingsError):
        services.membership_set_alert_channels(membership=membership, channels={"reconnect": "pigeon"})
