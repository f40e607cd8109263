"""Alerts: the inbox (the header's bell leads here) and the alert settings.

The settings page has three parts: how this member receives each kind of alert in the
current workspace (every member), which alerts the workspace raises at all and after how
many hours a failing account is reported (managers and owners), and the language of the
member's emails. Thin like the other pages: access helper → one service → redirect.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services
from accounts.alert_messages import alert_detail, alert_text
from accounts.models import MAX_FAILING_ALERT_HOURS, AlertChannel, AlertKind, User
from accounts.roles import Can
from mlaccounts.views.accounts import dashboard_login_required

ALERTS_PER_PAGE = 25


@require_GET
@dashboard_login_required
def alerts(request):
    """The user's inbox, newest first; `?unread=1` shows only what is unread."""
    unread_only = request.GET.get("unread") == "1"
    inbox = selectors.alert_inbox(user=request.user, unread_only=unread_only)
    page = Paginator(inbox, ALERTS_PER_PAGE).get_page(request.GET.get("page"))
    entries = [
        {
            "delivery": delivery,
            "alert": delivery.alert,
            "text": alert_text(delivery.alert),
            "detail": alert_detail(delivery.alert),
        }
        for delivery in page.object_list
    ]
    keep = "unread=1&" if unread_only else ""
    context = {
        "entries": entries,
        "page": page,
        "unread_only": unread_only,
        "prev_url": f"?{keep}page={page.previous_page_number()}" if page.has_previous() else "",
        "next_url": f"?{keep}page={page.next_page_number()}" if page.has_next() else "",
    }
    return render(request, "alerts/inbox.html", context)


@require_POST
@dashboard_login_required
def alerts_read(request):
    """Mark one entry (`delivery`) or every entry (`all`) read."""
    ids = None
    if "all" not in request.POST:
        # Ids as the inbox wrote them (digits, within a bigint); anything else marks nothing.
        ids = [v for v in request.POST.getlist("delivery") if v.isascii() and v.isdigit() and len(v) < 19]
        ids = ids[:ALERTS_PER_PAGE]
    services.alert_mark_read(user=request.user, delivery_ids=ids)
    return redirect(_back(request))


def _back(request) -> str:
    target = reverse("dashboard:alerts")
    if request.POST.get("unread") == "1":
        target += "?unread=1"
    return target


def _languages() -> list[tuple[str, str]]:
    return [(code, name) for code, name in settings.LANGUAGES]


@require_http_methods(["GET", "POST"])
@dashboard_login_required
def alert_settings(request):
    """The member's channels, the workspace's rules (managers) and the email language."""
    workspace = services.workspace_current(user=request.user)
    membership = workspace.membership
    errors: dict = {}
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "rules":
                selectors.workspace_get_for_user(
                    user=request.user, workspace_id=workspace.pk, need=Can.MANAGE
                )
                services.workspace_set_alert_rules(
                    workspace=workspace,
                    enabled=request.POST.getlist("enabled"),
                    failing_hours=request.POST.get("failing_hours"),
                )
                messages.success(request, _("The workspace's alerts are saved."))
            elif action == "language":
                language = request.POST.get("language", "")
                if language not in dict(_languages()):
                    raise services.AlertSettingsError({"language": [_("Choose a language from the list.")]})
                User.objects.filter(pk=request.user.pk).update(language=language)
                messages.success(request, _("Your emails will be in that language."))
            else:
                services.membership_set_alert_channels(
                    membership=membership,
                    channels={kind: request.POST.get(f"channel-{kind}", "") for kind in AlertKind.values},
                )
                messages.success(request, _("Your alert choices are saved."))
            return redirect("dashboard:alert_settings")
        except services.AlertSettingsError as error:
            errors = error.errors
    channels = selectors.alert_channels(membership=membership)
    context = {
        "workspace": workspace,
        "kinds": [
            {
                "value": kind.value,
                "label": kind.label,
                "channel": channels[kind.value],
                "on": kind.value not in workspace.alerts_off,
                "errors": errors.get(kind.value, []),
            }
            for kind in AlertKind
        ],
        "channels": AlertChannel.choices,
        "email_languages": _languages(),
        "language": request.user.language or settings.LANGUAGE_CODE,
        "errors": errors,
        "max_hours": MAX_FAILING_ALERT_HOURS,
    }
    return render(request, "alerts/settings.html", context, status=400 if errors else 200)
