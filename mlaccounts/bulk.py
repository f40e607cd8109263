"""Bulk actions of the overview: sync now, pause, resume or remove many accounts at once.

The targets are either the rows the user ticked or everything the current filter matches
(mlaccounts.overview.OverviewQuery), always read through the access helper's visibility
(accounts.selectors), so an id of an account the user cannot see is only "not found". Each
account is then held to the role rules one by one (accounts.roles): what the role does not
allow is skipped and counted, never refused as a whole. The outcome is one sentence with
counts ("12 queued, 2 skipped (paused)").
"""

import uuid
from collections import Counter
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import selectors, services
from accounts.models import AccountStatus, MLAccount
from accounts.roles import Can, allows
from mlaccounts.overview import TOKEN_DYING, OverviewQuery
from sync import ondemand

ACTIONS = ("sync", "pause", "resume", "remove")
NEEDS = {"sync": Can.SYNC, "pause": Can.MANAGE, "resume": Can.MANAGE, "remove": Can.MANAGE}
# More ids than a page holds are not a selection a person made.
MAX_IDS = 500

# Why an account was left out.
NOT_FOUND = "not_found"
NOT_ALLOWED = "not_allowed"
PAUSED = "paused"
EXPIRED = "expired"
SYNCING = "syncing"
ALREADY_PAUSED = "already_paused"
NOT_PAUSED = "not_paused"


@dataclass
class BulkOutcome:
    action: str
    done: list[MLAccount] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def message(self) -> str:
        """One sentence: what was done and, by reason, what was skipped."""
        count = len(self.done)
        done = {
            "sync": ngettext("%(count)d queued", "%(count)d queued", count),
            "pause": ngettext("%(count)d paused", "%(count)d paused", count),
            "resume": ngettext("%(count)d resumed", "%(count)d resumed", count),
            "remove": ngettext("%(count)d removed", "%(count)d removed", count),
        }[self.action] % {"count": count}
        parts = [done]
        reasons = {
            PAUSED: _("paused"),
            EXPIRED: _("waiting for reconnection"),
            SYNCING: _("already syncing"),
            ALREADY_PAUSED: _("already paused"),
            NOT_PAUSED: _("not paused"),
            NOT_ALLOWED: _("your role does not allow it"),
            NOT_FOUND: _("not found"),
        }
        for reason, label in reasons.items():
            if self.skipped[reason]:
                skipped = self.skipped[reason]
                parts.append(
                    ngettext("%(count)d skipped (%(reason)s)", "%(count)d skipped (%(reason)s)", skipped)
                    % {"count": skipped, "reason": label}
                )
        return _(", ").join(parts) + "."


def targets(*, user, workspace, ids: list[str] | None, query: OverviewQuery) -> tuple[list[MLAccount], int]:
    """The accounts a bulk action applies to, and how many of the ticked ids were not found.

    `ids` (the ticked rows) wins; without it, everything `query`'s filters match.
    """
    listed = {
        "user": user,
        "workspace": workspace,
        "now": timezone.now(),
        "token_margin": TOKEN_DYING,
    }
    if ids is not None:
        wanted = set()
        malformed = 0
        for value in ids[:MAX_IDS]:
            try:
                wanted.add(uuid.UUID(str(value)))
            except ValueError:
                malformed += 1
        accounts = list(selectors.mlaccount_overview(**listed).filter(pk__in=wanted)) if wanted else []
        return accounts, malformed + len(wanted) - len(accounts) + max(0, len(ids) - MAX_IDS)
    accounts = selectors.mlaccount_overview(
        **listed, statuses=query.statuses, sites=query.sites, has=query.has, search=query.search
    )
    return list(accounts), 0


def apply(*, action: str, accounts: list[MLAccount], not_found: int = 0) -> BulkOutcome:
    """Do `action` to each of `accounts` the caller's role allows; count the rest."""
    outcome = BulkOutcome(action=action)
    outcome.skipped[NOT_FOUND] = not_found
    chosen = []
    for account in accounts:
        reason = _skip_reason(action, account)
        if reason:
            outcome.skipped[reason] += 1
        else:
            chosen.append(account)
    if action == "sync":
        ondemand.sync_request_many(accounts=chosen)
    else:
        for account in chosen:
            if action == "pause":
                services.mlaccount_pause(account=account)
            elif action == "resume":
                services.mlaccount_resume(account=account)
            else:
                services.mlaccount_remove(account=account)
    outcome.done = chosen
    return outcome


def _skip_reason(action: str, account: MLAccount) -> str:
    if not allows(account.role, NEEDS[action]):
        return NOT_ALLOWED
    if action == "sync":
        if account.status == AccountStatus.PAUSED:
            return PAUSED
        if account.status == AccountStatus.EXPIRED:
            return EXPIRED
        if ondemand.sync_phase(account) == "syncing":
            return SYNCING
    elif action == "pause" and account.status == AccountStatus.PAUSED:
        return ALREADY_PAUSED
    elif action == "resume" and account.status != AccountStatus.PAUSED:
        return NOT_PAUSED
    return ""
