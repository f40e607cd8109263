"""The reputation's limits and warnings (accounts/reputation.py) and their settings (issue 15)."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts import reputation
from accounts.checks import reputation_limits_check
from accounts.models import ReputationSnapshot
from mlaccounts.env import env_limits


def snapshot(level="5_green", **rates):
    return ReputationSnapshot(day=date(2026, 11, 20), level_id=level, **rates)


def test_a_rate_within_the_margin_of_its_colours_limit_warns():
    near = snapshot(
        claims_rate=Decimal("0.024"),
        delayed_handling_rate=Decimal("0.05"),
        cancellations_rate=Decimal("0.031"),
    )

    found = {w.metric: w for w in reputation.warnings(near, margin_percent=20)}

    assert set(found) == {"claims", "cancellations"}  # 2.4 % ≥ 80 % of 3 %; 5 % < 80 % of 15 %
    assert (found["claims"].over, found["cancellations"].over) == (False, True)
    assert found["claims"].threshold == Decimal("0.02400")
    # No margin: only a rate at or past the limit itself.
    assert [(w.metric, w.threshold) for w in reputation.warnings(near, margin_percent=0)] == [
        ("cancellations", Decimal("0.03000"))
    ]


def test_levels_without_known_limits_and_missing_rates_do_not_warn():
    assert reputation.warnings(snapshot("1_red", claims_rate=Decimal("0.5")), margin_percent=20) == []
    assert reputation.warnings(snapshot(claims_rate=None), margin_percent=90) == []
    assert reputation.warnings(None, margin_percent=20) == []
    yellow = snapshot("3_yellow", claims_rate=Decimal("0.2"), delayed_handling_rate=Decimal("0.19"))
    assert [w.metric for w in reputation.warnings(yellow, margin_percent=10)] == ["delayed_handling"]


def test_the_limits_come_from_the_settings_when_set(settings):
    settings.REPUTATION_LIMITS = {"5_green": {"claims": 0.01}}
    found = reputation.warnings(snapshot(claims_rate=Decimal("0.009")), margin_percent=20)
    assert [(w.metric, w.limit) for w in found] == [("claims", Decimal("0.01"))]
    assert reputation_limits_check(None) == []


def test_unknown_names_in_the_limits_fail_the_system_check(settings):
    settings.REPUTATION_LIMITS = {"5_green": {"claim": 0.03}, "green": {"claims": 0.03}}
    assert sorted(error.id for error in reputation_limits_check(None)) == ["accounts.E001", "accounts.E002"]


@pytest.mark.parametrize(
    "raw",
    ["not json", "[1]", '{"5_green": 0.03}', '{"5_green": {"claims": 3}}', '{"5_green": {"claims": true}}'],
    ids=["not-json", "a-list", "no-metrics", "over-one", "a-boolean"],
)
def test_a_malformed_limits_variable_stops_the_start(monkeypatch, raw):
    monkeypatch.setenv("REPUTATION_LIMITS", raw)
    with pytest.raises(ImproperlyConfigured, match="REPUTATION_LIMITS"):
        env_limits("REPUTATION_LIMITS")


def test_an_unset_limits_variable_means_the_defaults(monkeypatch):
    monkeypatch.delenv("REPUTATION_LIMITS", raising=False)
    assert env_limits("REPUTATION_LIMITS") is None
    monkeypatch.setenv("REPUTATION_LIMITS", '{"5_green": {"claims": 0.02}}')
    assert env_limits("REPUTATION_LIMITS") == {"5_green": {"claims": 0.02}}
