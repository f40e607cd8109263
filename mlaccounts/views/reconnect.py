"""Reconnect links (accounts.services.reconnect): a manager makes one on the account page, and
the store's owner, with no login here, opens it and authorizes at Mercado Livre again.

The link's page and the callback are public; they show the store and its workspace (never
other accounts, nor anything of the dashboard) and say plainly what happened and what to do.
The token is the link's last path segment and its only secret: Django's request log would
name the path of every 4xx answer (a refused CSRF check's too), so those answers are marked as
logged (the webhook's way), and gunicorn's access log masks the segment (gunicorn.conf.py).
"""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.errors import DomainError, ReconnectLinkInvalid, ReconnectWrongSeller
from accounts.mercadolivre import deadline
from accounts.mercadolivre.errors import MLError
from accounts.models import RECONNECT_LINK_DAYS
from accounts.roles import Can
from sync import ondemand, outcomes

logger = logging.getLogger(__name__)

# An unknown link is "not found"; a used, expired or removed one is gone for good.
_STATUS = {
    ReconnectLinkInvalid.UNKNOWN: 404,
    ReconnectLinkInvalid.USED: 410,
    ReconnectLinkInvalid.EXPIRED: 410,
    ReconnectLinkInvalid.REMOVED: 410,
}


def _unlogged(response):
    # The path holds the token: this answer must not reach django.request's log.
    response._has_been_logged = True
    return response


def csrf_failure(request, reason=""):
    """Django's CSRF failure page (settings.CSRF_FAILURE_VIEW), except that a refused POST to a
    reconnect link is logged without its path, which holds the token."""
    response = django_csrf_failure(request, reason=reason)
    if request.path_info.startswith("/reconnect/"):
        logger.warning("reconnect link: CSRF check failed", extra={"event": "reconnect_csrf", "why": reason})
        _unlogged(response)
    return response


def _refused(request, error: ReconnectLinkInvalid):
    context = {"reason": error.reason, "message": error.message}
    return render(request, "reconnect/invalid.html", context, status=_STATUS[error.reason])


def _session_key(request) -> str:
    """This browser's session key, making the session if there is none (nobody is signed in):
    the authorization only completes in the browser that started it."""
    if not request.session.session_key:
        request.session.save()
        # An empty session's cookie is only sent when the session is marked modified.
        request.session.modified = True
    return request.session.session_key


def redirect_uri(request) -> str:
    # The connect flow's own callback: the one URI registered with the ML application.
    return settings.ML_REDIRECT_URI or request.build_absolute_uri(reverse("dashboard:connect_callback"))


@never_cache
def reconnect(request, token):
    """GET: which store and workspace the link restores, and a button. POST: to Mercado Livre."""
    if request.method not in ("GET", "HEAD", "POST"):
        return _unlogged(HttpResponseNotAllowed(["GET", "HEAD", "POST"]))
    try:
        if request.method == "POST":
            url = services.reconnect_begin(
                token=token, session_key=_session_key(request), redirect_uri=redirect_uri(request)
            )
            return redirect(url)
        link = services.reconnect_link_check(token=token)
    except ReconnectLinkInvalid as error:
        return _unlogged(_refused(request, error))
    context = {"link": link, "account": link.account, "workspace": link.account.workspace, "token": token}
    return render(request, "reconnect/link.html", context)


def reconnect_callback(request):
    """Mercado Livre sends the owner back (the connect callback hands over states made by a
    reconnect link): restore the link's account, or say why nothing changed. No login."""
    try:
        # The code exchange and /users/me happen in this request: one overall deadline.
        with deadline.within(settings.SYNC_REQUEST_DEADLINE):
            account = services.reconnect_complete(
                session_key=request.session.session_key or "",
                state=request.GET.get("state", ""),
                code=request.GET.get("code"),
                error=request.GET.get("error"),
            )
    except ReconnectLinkInvalid as error:
        return _refused(request, error)
    except ReconnectWrongSeller as error:
        context = {"outcome": "wrong_seller", "message": error.message}
        return render(request, "reconnect/result.html", context, status=409)
    except DomainError as error:  # a stale or foreign state, consent refused, an odd answer
        context = {"outcome": "not_done", "message": error.message, "again": True}
        return render(request, "reconnect/result.html", context, status=400)
    except MLError as error:
        logger.warning(
            "reconnect callback failed", extra={"event": "reconnect_callback", "error": type(error).__name__}
        )
        context = {"outcome": "not_done", "message": outcomes.ml_error_message(error), "again": True}
        return render(request, "reconnect/result.html", context, status=502)
    ondemand.sync_connected(account=account)
    return render(request, "reconnect/result.html", {"outcome": "done", "account": account})


@never_cache
@require_POST
@login_required
def account_reconnect_link(request, account_id):
    """Make a reconnect link for an account (manager and up) and show it, once, to copy."""
    account = selectors.mlaccount_get_for_user(user=request.user, account_id=account_id, need=Can.MANAGE)
    link, token = services.reconnect_link_create(account=account, by=request.user)
    context = {
        "account": account,
        "url": services.reconnect_link_url(token, request=request),
        "expires_at": link.expires_at,
        "days": RECONNECT_LINK_DAYS,
    }
    return render(request, "reconnect/made.html", context)
