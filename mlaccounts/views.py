"""Dashboard pages: thin views that call accounts.selectors and accounts.services."""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts import selectors, services
from accounts.errors import DomainError
from accounts.mercadolivre import oauth
from accounts.mercadolivre.errors import MLError, MLRateLimited, MLUnavailable

logger = logging.getLogger(__name__)


@login_required
def overview(request):
    accounts = selectors.mlaccount_list_for_user(user=request.user)
    return render(
        request,
        "mlaccounts/overview.html",
        {"accounts": accounts, "sites": oauth.SITES, "default_site": settings.ML_SITE_ID},
    )


def _redirect_uri(request) -> str:
    # Must equal, to the letter, a redirect URI registered with the ML application.
    return settings.ML_REDIRECT_URI or request.build_absolute_uri(reverse("dashboard:connect_callback"))


def ml_error_message(error: MLError) -> str:
    """Words a seller understands for a failure at Mercado Livre."""
    if isinstance(error, MLUnavailable):
        return _("Mercado Livre is not answering right now. Please try again in a few minutes.")
    if isinstance(error, MLRateLimited):
        return _("Mercado Livre asked us to slow down. Please try again in a minute.")
    return _("Mercado Livre did not accept the connection. Please try again; nothing was changed.")


@require_GET
@login_required
def connect(request):
    """Send the browser to Mercado Livre's authorization page (OAuth 2.0 with PKCE)."""
    site_id = request.GET.get("site") or settings.ML_SITE_ID
    if not request.session.session_key:
        request.session.save()
    try:
        url = services.oauth_begin(
            user=request.user,
            session_key=request.session.session_key,
            site_id=site_id.upper()[:4],
            redirect_uri=_redirect_uri(request),
        )
    except DomainError:
        messages.error(request, _("Choose a Mercado Livre country from the list."))
        return redirect("dashboard:overview")
    return redirect(url)


@require_GET
@login_required
def connect_callback(request):
    """Mercado Livre sends the browser back here with `code` and `state` (or an error)."""
    try:
        account, created = services.oauth_complete(
            user=request.user,
            session_key=request.session.session_key or "",
            state=request.GET.get("state", ""),
            code=request.GET.get("code"),
            error=request.GET.get("error"),
        )
    except DomainError as error:
        messages.error(request, str(error.message))
    except MLError as error:
        logger.warning("oauth callback failed", extra={"event": "oauth_callback", "error": type(error).__name__})
        messages.error(request, ml_error_message(error))
    else:
        if created:
            messages.success(request, _("%(name)s is connected.") % {"name": account.nickname})
        else:
            messages.success(request, _("%(name)s was reconnected.") % {"name": account.nickname})
    return redirect("dashboard:overview")


def health(request):
    """Liveness for load balancers: the process answers and the database is reachable."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
