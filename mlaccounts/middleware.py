"""Dashboard middleware: the language choice, the Content-Security-Policy per path, and a
503 page while Redis is down."""

import logging

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.conf import settings
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.shortcuts import render
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

from accounts.services.audit import audit_context
from mlaccounts import outages

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
API_DEFAULT_LANGUAGE = "en"


def _supported(code: str | None) -> str | None:
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


class LocaleMiddleware(DjangoLocaleMiddleware):
    """The language of each answer.

    Dashboard pages: the language switcher's choice (its cookie), else pt-BR. The dashboard
    is made for Mercado Livre Brasil sellers, so it opens in Portuguese whatever the
    browser's Accept-Language says; English and Spanish are an explicit, remembered choice.

    REST API: the cookie, else the client's Accept-Language, else English, the language of
    the API contract its existing clients were written against.
    """

    def process_request(self, request):
        cookie = _supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
        if request.path_info.startswith(API_PREFIX):
            language = cookie or self._accepted(request) or API_DEFAULT_LANGUAGE
        else:
            language = cookie or settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()

    @staticmethod
    def _accepted(request) -> str | None:
        for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
            if code == "*":
                return None
            if language := _supported(code):
                return language
        return None


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp, plus the relaxations that pages we do not write need, by path prefix.

    settings.CSP_PATH_UPDATES maps a path prefix to directives added to the policy there
    (the Django admin sets a few inline styles; Swagger UI has an inline stylesheet); the
    longest matching prefix applies. A view's own csp_update decorator wins over the path's.
    """

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and parts.update is None:
            updates = getattr(settings, "CSP_PATH_UPDATES", {})
            matches = [prefix for prefix in updates if request.path_info.startswith(prefix)]
            if matches:
                # The most specific prefix wins.
                parts.update = updates[max(matches, key=len)]
        return parts


class ServiceUnavailableMiddleware:
    """A dashboard page that needed Redis while it was down answers a plain 503 page.

    The cache fails open on its own (mlaccounts.outages); this catches what cannot, such
    as a task sent to a broker that is down. /api/ answers in its envelope instead
    (mlaccounts.api.middleware, which sees the exception first).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path_info.startswith(API_PREFIX) or not isinstance(exception, outages.UNAVAILABLE_ERRORS):
            return None
        logger.warning(
            "dashboard: redis unavailable",
            extra={"event": "service_unavailable", "path": request.path, "error": type(exception).__name__},
        )
        response = render(request, "503.html", status=503)
        response["Retry-After"] = str(outages.RETRY_AFTER)
        return response


class AuditContextMiddleware:
    """Audit entries written while a request runs name its user, IP and user agent
    (accounts.services.audit): the services need not be handed the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with audit_context(request):
            return self.get_response(request)
