"""sync/outcomes.py: the one mapping from a sync's outcome to codes and words."""

from accounts.errors import NoRefreshToken
from accounts.mercadolivre.errors import MLBadResponse, MLInvalidGrant, MLRateLimited, MLUnavailable
from mlaccounts.templatetags import dashboard
from sync import engine, outcomes


def test_every_caller_uses_the_one_mapping():
    assert engine.classify is outcomes.classify
    assert engine.describe is outcomes.describe
    assert engine.Outcome is outcomes.Outcome
    assert dashboard.sync_problem("auth") == outcomes.problem("auth")


def test_codes_of_each_outcome():
    code = outcomes.code_for
    assert code(outcomes.Outcome.SUCCESS, None) == ""
    assert code(outcomes.Outcome.SKIPPED, None) == "SYNC_IN_PROGRESS"
    assert code(outcomes.Outcome.MISSING, None) == "NOT_FOUND"
    assert code(outcomes.Outcome.FAILED, MLInvalidGrant("dead")) == "TOKEN_EXPIRED"
    assert code(outcomes.Outcome.FAILED, NoRefreshToken()) == "TOKEN_EXPIRED"
    assert code(outcomes.Outcome.FAILED, MLRateLimited("slow")) == "ML_RATE_LIMITED"
    assert code(outcomes.Outcome.FAILED, MLUnavailable("down")) == "ML_UNAVAILABLE"
    assert code(outcomes.Outcome.FAILED, MLBadResponse("garbled")) == "ML_UNAVAILABLE"
    assert code(outcomes.Outcome.FAILED, RuntimeError("bug")) == "INTERNAL_ERROR"
