"""What the audit log pages show: the filter form, the changes in words, the CSV rows.

Used by mlaccounts.views.audit (the workspace's log and its CSV) and the account page's
"Activity" section. The entries are read through accounts.selectors (the access helper).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from urllib.parse import urlencode

from django import forms
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import selectors
from accounts.models import AccountStatus, AccountType, AlertKind, AuditAction, AuditEntry, Role

# Cells a spreadsheet would run as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class AccountChoiceField(forms.ChoiceField):
    """The account filter: its choices are the accounts the reader sees, but any id passes to
    the access helper, which answers 404 for one they cannot see (like anywhere else)."""

    def valid_value(self, value):
        return True


class AuditFilterForm(forms.Form):
    """The log's filters (a GET form): account, action, a piece of the actor's email, days."""

    account = AccountChoiceField(label=gettext_lazy("Account"), required=False)
    action = forms.ChoiceField(label=gettext_lazy("Action"), required=False)
    actor = forms.CharField(label=gettext_lazy("Who (email)"), required=False, max_length=254)
    since = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data=None, *, accounts: Iterable = ()):
        super().__init__(data)
        self.fields["account"].choices = [("", _("Every account"))] + [
            (str(account.pk), account.account_name or account.nickname) for account in accounts
        ]
        self.fields["action"].choices = [("", _("Every action")), *AuditAction.choices]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end comes before the start."))
        return data

    def filters(self) -> dict:
        """The selector's keyword arguments for the fields that are valid (an invalid one is
        shown with its error and left out, not applied half-way)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "account_id": data.get("account") or None,
            "action": data.get("action") or "",
            "actor": data.get("actor") or "",
            "since": data.get("since"),
            "until": data.get("until"),
        }

    def params(self, **extra) -> str:
        """The valid filters (and `extra`) as a query string, for the pages' and the CSV's links."""
        data = getattr(self, "cleaned_data", {})
        params = {
            name: data[name].isoformat() if hasattr(data[name], "isoformat") else data[name]
            for name in self.fields
            if data.get(name) and name not in self.errors
        }
        return urlencode({**params, **extra})


def _field_labels() -> dict[str, str]:
    return {
        "account_name": _("name"),
        "account_type": _("type"),
        "sync_interval": _("sync interval (seconds)"),
        "notifications_enabled": _("notifications"),
        "email_notifications_enabled": _("email notifications"),
        "is_primary": _("primary"),
        "status": _("status"),
        "name": _("name"),
        "response_target_minutes": _("response target (minutes)"),
        "reputation_margin_percent": _("reputation margin (%)"),
        "member": _("member"),
        "email": _("email"),
        "role": _("role"),
        "scope": _("accounts"),
        "question": _("question"),
        "item": _("listing"),
        "via": _("through"),
        "ml_user_id": _("Mercado Livre user"),
        "connected_from": _("authorized from the workspace"),
        "workspace": _("workspace"),
        "expires_at": _("valid until"),
        "alerts_off": _("alerts switched off"),
        "failing_alert_hours": _("failing alert after (hours)"),
    }


def _moment(value) -> str:
    """An ISO 8601 time, as the reader's short date and time."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return formats.date_format(moment, "SHORT_DATETIME_FORMAT")


def _value(field: str, value) -> str:
    if value is None:
        return _("every account") if field == "scope" else "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if field == "alerts_off" and isinstance(value, list):
        kinds = dict(AlertKind.choices)
        return ", ".join(str(kinds.get(kind, kind)) for kind in value) or "—"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "—"
    if field == "expires_at":
        return _moment(value)
    if field == "status" and value in AccountStatus.values:
        return str(AccountStatus(value).label)
    if field == "role" and value in Role.values:
        return str(Role(value).label)
    if field == "account_type" and value in AccountType.values:
        return str(AccountType(value).label)
    if field == "via":
        ways = {
            "dashboard": _("the dashboard"),
            "admin": _("the admin"),
            "api": _("the API"),
            "reconnect link": _("a reconnect link"),
        }
        return ways.get(value, value)
    return str(value)


def describe(changes: dict) -> list[str]:
    """Each change in words: "role: operator → manager" for a pair [from, to], "question:
    123" for a fact."""
    labels = _field_labels()
    lines = []
    for field, value in (changes or {}).items():
        label = labels.get(field, field)
        if isinstance(value, list) and len(value) == 2:
            lines.append(f"{label}: {_value(field, value[0])} → {_value(field, value[1])}")
        else:
            lines.append(f"{label}: {_value(field, value)}")
    return lines


def account_activity(account) -> list[AuditEntry] | None:
    """The account page's "Activity": its newest entries with their changes in words, for an
    owner or a manager (None for the others: the section is not shown)."""
    entries = selectors.audit_latest_for_account(account=account)
    for entry in entries or ():
        entry.lines = describe(entry.changes)
    return entries


def csv_safe(value) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a quote first."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file that hands back what is written to it, for csv.writer inside a stream."""

    def write(self, value):
        return value


def csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The CSV of `entries`, line by line: a header, then one row per entry (times in the
    current time zone, ISO 8601 with the offset)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(
        [
            _("time"),
            _("action"),
            _("action code"),
            _("actor"),
            _("workspace"),
            _("account"),
            _("account id"),
            _("IP address"),
            _("user agent"),
            _("changes"),
            _("changes (JSON)"),
        ]
    )
    for entry in entries:
        yield writer.writerow(
            csv_safe(cell)
            for cell in (
                timezone.localtime(entry.at).isoformat(timespec="seconds"),
                entry.get_action_display(),
                entry.action,
                entry.actor_email,
                entry.workspace_name,
                entry.account_label,
                entry.account_id or "",
                entry.ip or "",
                entry.user_agent,
                "; ".join(describe(entry.changes)),
                json.dumps(entry.changes, ensure_ascii=False, sort_keys=True),
            )
        )
