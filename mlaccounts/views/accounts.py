"""Dashboard pages of the accounts: thin views that call accounts.selectors and accounts.services.

Every view: authenticate → the access helper (an account the user cannot see is a 404, an
action their role does not allow a 403) → form → one
service (sync.ondemand queues "sync now" and "sync all", accounts.tokens renews a token)
→ render, or redirect with a message. Actions that call ML or queue ML work share the
API's per-user `ml_action` limit. Actions are POST only and CSRF protected. The overview's forms
also work through htmx: then the answer is the refreshed account list (plus the messages,
swapped out of band) instead of a redirect.
"""

import logging
import math
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import parse_etags, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services, tokens
from accounts.errors import AccountConnectedElsewhere, AccountValidationError, DomainError, NoRefreshToken
from accounts.mercadolivre import deadline, oauth
from accounts.mercadolivre.errors import MLError, MLInvalidGrant, MLUnauthorized
from accounts.models import AccountStatus, SyncStatus
from accounts.roles import Can, abilities, allows
from mlaccounts import audit_page, bulk, outages, sales_page
from mlaccounts import overview as overview_page
from mlaccounts.api.throttles import ml_action_wait
from mlaccounts.forms import AccountSettingsForm, SiteForm, TokenConnectForm, add_service_errors
from mlaccounts.templatetags.dashboard import site_name
from mlaccounts.views.reconnect import reconnect_callback
from sync import ondemand, outcomes, schedule

logger = logging.getLogger(__name__)


# --- helpers -------------------------------------------------------------------------------


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def dashboard_login_required(view):
    """login_required, except that an htmx request of a signed-out user (a list refresh
    after the session ended) is told to load the login page instead of swapping it in."""
    protected = login_required(view)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated and is_htmx(request):
            page = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
            if not url_has_allowed_host_and_scheme(page, allowed_hosts=None):
                page = "/"
            login = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': page})}"
            return HttpResponse(status=401, headers={"HX-Redirect": login})
        return protected(request, *args, **kwargs)

    return wrapper


def _next_url(request, default: str) -> str:
    """Where to go after an action: the page it was started from, if it is ours."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def user_workspaces(request) -> list:
    """The user's workspaces with their role (the header's switcher), one query per request."""
    if getattr(request, "workspaces", None) is None:
        request.workspaces = list(selectors.workspace_list_for_user(user=request.user))
    return request.workspaces


def current_workspace(request):
    """The workspace the dashboard shows this user (remembered on the user), once per request.

    Picked from user_workspaces, so the switcher and the page cost one query together; a
    user whose remembered workspace is gone (removed, deleted) falls back to their personal
    one (accounts.services.workspace_current).
    """
    if getattr(request, "workspace", None) is None:
        chosen = request.user.current_workspace_id
        workspace = next((w for w in user_workspaces(request) if chosen and w.pk == chosen), None)
        if workspace is None:
            workspace = services.workspace_current(user=request.user)
            request.workspaces = None  # a personal workspace may just have been made
        else:
            workspace.can = abilities(workspace.role)
        request.workspace = workspace
    return request.workspace


def _overview_context(request) -> dict:
    """The overview of the current workspace that the URL's query asks for (mlaccounts.overview)."""
    workspace = current_workspace(request)
    query = overview_page.OverviewQuery.from_params(request.GET)
    page = overview_page.build(
        request, user=request.user, workspace=workspace, query=query, now=timezone.now()
    )
    return {
        "overview": page,
        "labels": page.labels,
        "accounts": page.accounts,
        "totals": page.totals,
        "query": query,
        "now": page.now,
        "workspace": workspace,
        "status_choices": [(value, label) for value, label in AccountStatus.choices],
        "site_choices": [(site, site_name(site)) for site, _name in oauth.SITES],
    }


def _account_list(request, *, with_messages: bool, notice=None):
    context = _overview_context(request)
    context["oob_messages"] = with_messages
    context["notice"] = notice
    return render(request, "_partials/_account_list.html", context)


@dataclass(frozen=True)
class RowNotice:
    """The outcome of a row's action, shown next to that row (htmx) instead of at the top."""

    account_id: str
    text: str
    level: str = "success"


def _after_action(request, account=None, text: str = "", level: str = "success"):
    """htmx: the refreshed list, with the outcome next to the row it concerns (or among the
    messages for a list-wide action); otherwise the message, and back to where the action
    started."""
    if is_htmx(request):
        if account is not None:
            return _account_list(request, with_messages=False, notice=RowNotice(str(account.pk), text, level))
        return _account_list(request, with_messages=True)
    if text:
        messages.add_message(request, getattr(messages, level.upper()), text)
    # The rows' forms post to their action with the overview's query: back to that view.
    view = reverse("dashboard:overview") + (f"?{request.GET.urlencode()}" if request.GET else "")
    return redirect(_next_url(request, view))


def _account(request, account_id, need: Can = Can.VIEW):
    """The access helper: 404 for an account the user cannot see, 403 when `need` is not
    allowed by their role (buttons their role does not allow are hidden, and refused here)."""
    return selectors.mlaccount_get_for_user(user=request.user, account_id=account_id, need=need)


def _throttled(request, wait: float):
    """Over the ML action limit (shared with the API): nothing done, say when to retry, 429."""
    seconds = max(1, math.ceil(wait))
    messages.error(
        request,
        ngettext(
            "Too many requests to Mercado Livre. Nothing was done; try again in %(count)d second.",
            "Too many requests to Mercado Livre. Nothing was done; try again in %(count)d seconds.",
            seconds,
        )
        % {"count": seconds},
    )
    if is_htmx(request):
        response = _account_list(request, with_messages=True)
    else:
        response = render(request, "mlaccounts/overview.html", _overview_context(request))
    response.status_code = 429
    response["Retry-After"] = str(seconds)
    return response


# --- overview ---------------------------------------------------------------------------------


@require_GET
@dashboard_login_required
def overview(request):
    """The overview. A query string in any other form than its own (empty fields of the
    filter form, a `?view=` choice, values it dropped) is redirected to that form, so the
    address bar always holds the clean, shareable URL of what is shown."""
    context = _overview_context(request)
    canonical = context["query"].params()
    if request.META.get("QUERY_STRING", "") != canonical:
        return redirect(reverse("dashboard:overview") + (f"?{canonical}" if canonical else ""))
    return render(request, "mlaccounts/overview.html", context)


@require_GET
@dashboard_login_required
def overview_list(request):
    """The overview's totals and rows alone, for htmx to refresh every few seconds.

    It never renders the messages: reading them here would consume them before the page
    that should show them. A request that names the versions it shows (app.js sends the
    list's `data-etag` as If-None-Match, and the page's row versions as X-Overview-Rows)
    gets 304 and no body while nothing changed, only the changed rows while the page holds
    the same rows in the same order (X-Overview-Delta: 1), and the whole list otherwise
    (mlaccounts.overview).
    """
    context = _overview_context(request)
    page = context["overview"]
    changes = overview_page.changed_rows(page, request.headers.get("X-Overview-Rows", ""))
    if page.etag in parse_etags(request.headers.get("If-None-Match", "")):
        response = HttpResponseNotModified()
    elif changes is not None:
        # The same rows in the same order: only those that changed (app.js puts them in place).
        context["changed"], context["totals_changed"] = changes
        response = render(request, "_partials/_account_delta.html", context)
        response["X-Overview-Delta"] = "1"
    else:
        context["oob_messages"] = False
        response = render(request, "_partials/_account_list.html", context)
    response["ETag"] = page.etag
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ["X-Overview-Rows"])
    return response


@require_POST
@dashboard_login_required
def sync_all(request):
    """Queue a sync of every account that is neither paused nor waiting for reconnection.

    The API's sync-all service and rules (sync.ondemand.sync_all); the syncs run in the
    worker and each row shows its progress and outcome as the list refreshes.
    """
    wait = ml_action_wait(request)
    if wait is not None:
        return _throttled(request, wait)
    plan = ondemand.sync_all(user=request.user, workspace=current_workspace(request))
    queued = len(plan.queued)
    if queued:
        messages.success(
            request,
            ngettext("Sync queued for %(count)d account.", "Sync queued for %(count)d accounts.", queued)
            % {"count": queued},
        )
    else:
        messages.info(request, _("There is no active account to sync."))
    if plan.paused:
        messages.info(
            request,
            ngettext(
                "%(count)d paused account was skipped.",
                "%(count)d paused accounts were skipped.",
                len(plan.paused),
            )
            % {"count": len(plan.paused)},
        )
    if plan.expired:
        messages.info(
            request,
            ngettext(
                "%(count)d account waiting for reconnection was skipped.",
                "%(count)d accounts waiting for reconnection were skipped.",
                len(plan.expired),
            )
            % {"count": len(plan.expired)},
        )
    return _after_action(request)


@require_POST
@dashboard_login_required
def bulk_action(request):
    """Sync now, pause, resume or remove the ticked rows, or everything the filter matches
    (`scope=matching` with the filter's fields): mlaccounts.bulk. Removing asks first, on a
    page that says how many accounts it will remove."""
    action = request.POST.get("action", "")
    back = _next_url(request, reverse("dashboard:overview"))
    matching = request.POST.get("scope") == "matching"
    ids = None if matching else request.POST.getlist("ids")
    if action not in bulk.ACTIONS or ids == []:
        if action not in bulk.ACTIONS:
            messages.error(request, _("Choose what to do with the accounts."))
        else:
            messages.error(request, _("Tick the accounts first, or choose every account that matches."))
        response = render(request, "mlaccounts/overview.html", _overview_context(request))
        response.status_code = 400
        return response
    if action == "sync":
        wait = ml_action_wait(request)
        if wait is not None:
            return _throttled(request, wait)
    query = overview_page.OverviewQuery.from_params(request.POST)
    accounts, not_found = bulk.targets(
        user=request.user, workspace=current_workspace(request), ids=ids, query=query
    )
    if action == "remove" and request.POST.get("confirm") != "yes":
        removable = [account for account in accounts if allows(account.role, Can.MANAGE)]
        context = {
            "accounts": removable[:20],
            "more": max(0, len(removable) - 20),
            "count": len(removable),
            # Confirming repeats the same choice: the ticked ids, or the filter's fields.
            "ids": [] if matching else [str(account.pk) for account in removable],
            "matching": query.filter_params() if matching else None,
            "next": back,
        }
        return render(request, "mlaccounts/bulk_remove.html", context)
    outcome = bulk.apply(action=action, accounts=accounts, not_found=not_found)
    level = messages.SUCCESS if outcome.done else messages.INFO
    messages.add_message(request, level, outcome.message())
    return redirect(back)


# --- one account: actions ----------------------------------------------------------------------


@require_POST
@dashboard_login_required
def account_sync(request, account_id):
    """Queue a sync of one account (sync.ondemand.sync_request); its row shows the rest."""
    account = _account(request, account_id, Can.SYNC)
    wait = ml_action_wait(request)
    if wait is not None:
        return _throttled(request, wait)
    if ondemand.sync_phase(account) == "syncing":
        text = _("%(name)s is already being synced; the numbers will update in a moment.")
        return _after_action(request, account, text % {"name": account.account_name}, "info")
    ondemand.sync_request(account=account)
    return _after_action(request, account, _("Sync queued for %(name)s.") % {"name": account.account_name})


@require_POST
@dashboard_login_required
def account_pause(request, account_id):
    """Stop syncing one account (nothing changes on Mercado Livre: its listings stay live)."""
    account = services.mlaccount_pause(account=_account(request, account_id, Can.MANAGE))
    text = _("Syncing of %(name)s is paused: its numbers will not update until you resume it.")
    return _after_action(request, account, text % {"name": account.account_name})


@require_POST
@dashboard_login_required
def account_resume(request, account_id):
    account = services.mlaccount_resume(account=_account(request, account_id, Can.MANAGE))
    text = _("Syncing of %(name)s is resumed; it will sync shortly.")
    return _after_action(request, account, text % {"name": account.account_name})


@require_POST
@dashboard_login_required
def account_make_primary(request, account_id):
    account = services.mlaccount_make_primary(account=_account(request, account_id, Can.MANAGE))
    text = _("%(name)s is now your primary account.")
    return _after_action(request, account, text % {"name": account.account_name})


@require_POST
@dashboard_login_required
def account_renew_token(request, account_id):
    """Renew the token pair now, through the one refresh path (accounts.tokens)."""
    account = _account(request, account_id, Can.MANAGE)
    wait = ml_action_wait(request)
    if wait is not None:
        return _throttled(request, wait)
    name = account.account_name
    try:
        # Synchronous, so under one overall deadline below the web server's timeout.
        with deadline.within(settings.SYNC_REQUEST_DEADLINE):
            tokens.renew_now(account)
    except NoRefreshToken as error:
        messages.error(request, str(error.message))
    except MLInvalidGrant:
        messages.error(
            request,
            _("Mercado Livre refused to renew the token of %(name)s. Reconnect the account.")
            % {"name": name},
        )
    except MLError as error:
        messages.error(request, outcomes.ml_error_message(error))
    else:
        messages.success(request, _("The token of %(name)s was renewed.") % {"name": name})
    return redirect(_next_url(request, reverse("dashboard:account", args=[account.pk])))


@require_http_methods(["GET", "POST"])
@dashboard_login_required
def account_remove(request, account_id):
    """GET: a confirmation page naming the account. POST: remove it."""
    account = _account(request, account_id, Can.MANAGE)
    if request.method == "POST":
        services.mlaccount_remove(account=account)
        messages.success(
            request, _("%(name)s was removed from ML Accounts.") % {"name": account.account_name}
        )
        return redirect("dashboard:overview")
    return render(request, "mlaccounts/remove.html", {"account": account})


# --- one account: the page ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@dashboard_login_required
def account_detail(request, account_id):
    """The account's numbers, token, history and settings form (POST saves the settings)."""
    account = _account(request, account_id, Can.MANAGE if request.method == "POST" else Can.VIEW)
    if request.method == "POST":
        form = AccountSettingsForm(request.POST)
        if form.is_valid():
            try:
                services.mlaccount_update(
                    account=account,
                    account_name=form.cleaned_data["account_name"],
                    account_type=form.cleaned_data["account_type"],
                    sync_interval=form.cleaned_data["sync_interval"],
                    notifications_enabled=form.cleaned_data["notifications_enabled"],
                    email_notifications_enabled=form.cleaned_data["email_notifications_enabled"],
                )
            except AccountValidationError as error:
                add_service_errors(form, error, AccountSettingsForm.SERVICE_FIELDS)
            else:
                messages.success(request, _("The settings were saved."))
                return redirect("dashboard:account", account.pk)
        status = 400
    else:
        form = AccountSettingsForm(initial=AccountSettingsForm.initial_for(account))
        status = 200
    context = {
        "account": account,
        "form": form,
        "health": tokens.token_health(account),
        "events": selectors.mlaccount_events(account=account),
        "failed": account.last_sync_status == SyncStatus.FAILED,
        "retry_text": overview_page.retry_text(account),
        "notifications": selectors.mlaccount_notification_summary(account=account),
        "notifications_on": bool(settings.ML_WEBHOOK_SECRET),
        "reconcile_interval": max(account.sync_interval, settings.ML_RECONCILE_INTERVAL),
        # Owners and managers: its newest audit entries (one query); None for the others.
        "activity": audit_page.account_activity(account),
        **sales_page.account_sales_context(request, account),
    }
    return render(request, "mlaccounts/detail.html", context, status=status)


# --- connecting ----------------------------------------------------------------------------------


def _connected(request, account, *, created: bool) -> None:
    """After a connect or reconnect: queue the account's first sync, and say it is connected."""
    ondemand.sync_connected(account=account)
    if created:
        messages.success(request, _("%(name)s is connected.") % {"name": account.nickname})
    else:
        messages.success(request, _("%(name)s was reconnected.") % {"name": account.nickname})


# The pasted tokens are shown back after an error (TokenConnectForm): never in an error
# report, never in the browser's cache.
@sensitive_post_parameters("access_token", "refresh_token")
@never_cache
@require_http_methods(["GET", "POST"])
@dashboard_login_required
def connect_new(request):
    """Connect a seller: the OAuth site picker, and the advanced token-pair form (POST)."""
    workspace = _workspace_to_connect_into(request)
    token_form = TokenConnectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and token_form.is_valid():
        data = token_form.cleaned_data
        # Fields left empty cost an ML call (/users/me): the per-user `ml_action` limit.
        if not (data["ml_user_id"] and data["nickname"] and data["email"]):
            wait = ml_action_wait(request)
            if wait is not None:
                return _token_form_throttled(request, workspace, token_form, wait)
        try:
            # What was left empty is read from ML's /users/me: synchronous, so under one
            # overall deadline below the web server's timeout.
            with deadline.within(settings.SYNC_REQUEST_DEADLINE):
                account, created = services.mlaccount_connect_pasted(
                    workspace=workspace,
                    connected_by=request.user,
                    ml_user_id=data["ml_user_id"],
                    nickname=data["nickname"],
                    email=data["email"],
                    access_token=data["access_token"],
                    refresh_token=data["refresh_token"] or None,
                    token_expires_at=data["token_expires_at"],
                    site_id=data["site"],
                    account_name=data["account_name"] or None,
                    account_type=data["account_type"],
                )
        except AccountValidationError as error:
            add_service_errors(token_form, error, TokenConnectForm.SERVICE_FIELDS)
        except DomainError as error:
            token_form.add_error(None, str(error.message))
        except MLUnauthorized:
            token_form.add_error(
                "access_token",
                _(
                    "Mercado Livre did not accept this access token: it is wrong, expired or "
                    "revoked. Paste a current one; nothing was stored."
                ),
            )
        except MLError as error:
            logger.warning(
                "token connect: /users/me failed",
                extra={"event": "token_connect", "error": type(error).__name__, "status": error.status},
            )
            token_form.add_error(None, outcomes.ml_error_message(error))
        else:
            _connected(request, account, created=created)
            return redirect("dashboard:overview")
    context = {
        "site_form": SiteForm(),
        "token_form": token_form,
        "token_form_open": token_form.is_bound,
        "workspace": workspace,
    }
    return render(request, "mlaccounts/connect.html", context, status=400 if token_form.is_bound else 200)


def _token_form_throttled(request, workspace, token_form, wait: float):
    """Over the ML action limit: the form back with what was pasted, nothing done, 429."""
    seconds = max(1, math.ceil(wait))
    token_form.add_error(
        None,
        ngettext(
            "Too many requests to Mercado Livre. Nothing was done; try again in %(count)d second.",
            "Too many requests to Mercado Livre. Nothing was done; try again in %(count)d seconds.",
            seconds,
        )
        % {"count": seconds},
    )
    context = {
        "site_form": SiteForm(),
        "token_form": token_form,
        "token_form_open": True,
        "workspace": workspace,
    }
    response = render(request, "mlaccounts/connect.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response


def _workspace_to_connect_into(request):
    """The current workspace, if the user may connect accounts there (manager and up): 403 otherwise."""
    workspace = current_workspace(request)
    return selectors.workspace_get_for_user(user=request.user, workspace_id=workspace.pk, need=Can.MANAGE)


def _redirect_uri(request) -> str:
    # Must equal, to the letter, a redirect URI registered with the ML application.
    return settings.ML_REDIRECT_URI or request.build_absolute_uri(reverse("dashboard:connect_callback"))


@require_GET
@login_required
def connect(request):
    """Send the browser to Mercado Livre's authorization page (OAuth 2.0 with PKCE)."""
    site_id = request.GET.get("site") or settings.ML_SITE_ID
    workspace = _workspace_to_connect_into(request)
    if not request.session.session_key:
        request.session.save()
    try:
        url = services.oauth_begin(
            user=request.user,
            workspace=workspace,
            session_key=request.session.session_key,
            site_id=site_id.upper()[:4],
            redirect_uri=_redirect_uri(request),
        )
    except DomainError:
        messages.error(request, _("Choose a Mercado Livre country from the list."))
        return redirect("dashboard:connect_new")
    return redirect(url)


@require_GET
def connect_callback(request):
    """Mercado Livre sends the browser back here with `code` and `state` (or an error).

    A state made by a reconnect link is that link's (mlaccounts.views.reconnect: no login,
    its own pages); any other needs the signed-in user who started connecting.
    """
    if services.reconnect_state_pending(state=request.GET.get("state", "")):
        return reconnect_callback(request)
    return _connect_callback(request)


@login_required
def _connect_callback(request):
    try:
        with deadline.within(settings.SYNC_REQUEST_DEADLINE):
            account, created = services.oauth_complete(
                user=request.user,
                session_key=request.session.session_key or "",
                state=request.GET.get("state", ""),
                code=request.GET.get("code"),
                error=request.GET.get("error"),
            )
    except AccountConnectedElsewhere as error:
        # The seller's new pair was kept on its account in the other workspace (alive).
        messages.warning(request, str(error.message))
    except DomainError as error:
        messages.error(request, str(error.message))
    except MLError as error:
        logger.warning(
            "oauth callback failed", extra={"event": "oauth_callback", "error": type(error).__name__}
        )
        messages.error(request, outcomes.ml_error_message(error))
    else:
        _connected(request, account, created=created)
    return redirect("dashboard:overview")


@require_GET
def health(request):
    """For load balancers and monitors: the database and Redis answer, and when the
    background jobs last reported (the 15-minute health check's heartbeat; null if none in
    the last 45, or while Redis is down).

    Public, so it says nothing about accounts. A failed dependency answers 503 naming it
    ("unavailable"), not 500; Redis is "unused" without REDIS_URL (`make run`).
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("health: database unreachable")
        database = "unavailable"
    else:
        database = "ok"
    redis = outages.redis_status()
    beat = schedule.heartbeat_read()
    healthy = database == "ok" and redis != "unavailable"
    body = {
        "status": "ok" if healthy else "error",
        "database": database,
        "redis": redis,
        "lastHeartbeat": beat["at"] if beat else None,
    }
    return JsonResponse(body, status=200 if healthy else 503)
