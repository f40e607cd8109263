"""The words of an alert, made from its kind and params in the active language.

An alert stores what happened (`kind`, `params`), not a sentence: each reader sees it in
their own language, in the inbox, the emails and the API alike.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import reputation
from accounts.models import Alert, AlertKind


def _percent(value) -> str:
    try:
        share = Decimal(str(value)) * 100
    except (InvalidOperation, ValueError):
        return str(value)
    return f"{number_format(share, decimal_pos=1)} %"


def duration_words(minutes: int) -> str:
    """`90` → "1 h 30 min", `45` → "45 min", `120` → "2 h"."""
    hours, rest = divmod(int(minutes), 60)
    if hours and rest:
        return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": rest}
    if hours:
        return _("%(hours)s h") % {"hours": hours}
    return _("%(minutes)s min") % {"minutes": rest}


def _reputation_text(alert: Alert) -> str:
    params = alert.params or {}
    parts = []
    if drop := params.get("drop"):
        parts.append(
            _("The reputation of %(account)s dropped from %(from)s to %(to)s.")
            % {
                "account": alert.account_label,
                "from": reputation.level_label(drop[0]),
                "to": reputation.level_label(drop[1]),
            }
        )
    for rate in params.get("rates", []):
        words = {
            "account": alert.account_label,
            "metric": str(reputation.METRIC_LABELS.get(rate.get("metric"), rate.get("metric"))),
            "rate": _percent(rate.get("rate")),
            "limit": _percent(rate.get("limit")),
        }
        if rate.get("over"):
            parts.append(_("%(metric)s of %(account)s at %(rate)s: over its limit of %(limit)s.") % words)
        else:
            parts.append(_("%(metric)s of %(account)s at %(rate)s: near its limit of %(limit)s.") % words)
    return " ".join(parts)


def alert_text(alert: Alert) -> str:
    """One or two sentences that say what happened, for the inbox and the emails."""
    params = alert.params or {}
    account = alert.account_label
    if alert.kind == AlertKind.RECONNECT:
        return _(
            "Mercado Livre no longer accepts the authorization of %(account)s: it needs reconnecting "
            "before it can sync again."
        ) % {"account": account}
    if alert.kind == AlertKind.FAILING:
        hours = int(params.get("hours", 0))
        return ngettext(
            "%(account)s has not synced for %(hours)s hour: every try failed.",
            "%(account)s has not synced for %(hours)s hours: every try failed.",
            hours,
        ) % {"account": account, "hours": hours}
    if alert.kind == AlertKind.QUESTION_OVERDUE:
        count = int(params.get("count", 0))
        return ngettext(
            "%(count)s question to %(account)s has waited longer than the response target (%(target)s).",
            "%(count)s questions to %(account)s have waited longer than the response target (%(target)s).",
            count,
        ) % {"count": count, "account": account, "target": duration_words(params.get("target_minutes", 0))}
    if alert.kind == AlertKind.NEW_CLAIM:
        count = int(params.get("count", 0))
        return ngettext(
            "A buyer opened a claim against %(account)s.",
            "Buyers opened %(count)s claims against %(account)s.",
            count,
        ) % {"count": count, "account": account}
    if alert.kind == AlertKind.REPUTATION:
        return _reputation_text(alert)
    if alert.kind == AlertKind.RECOVERED:
        if params.get("was") == AlertKind.RECONNECT:
            return _("%(account)s is connected again.") % {"account": account}
        return _("%(account)s is syncing again.") % {"account": account}
    return str(alert)


def alert_detail(alert: Alert) -> str:
    """A second line with the facts behind the alert (the error ML gave), or ""."""
    error = (alert.params or {}).get("error", "")
    if alert.kind in (AlertKind.RECONNECT, AlertKind.FAILING) and error:
        return _("Last error: %(error)s") % {"error": error}
    return ""
