"""The API's rate limits (api-contract.md "Throttling"), counted in the cache.

The cache is Redis when REDIS_URL is set, so every web process shares the counts; in
process memory otherwise (one machine). Rates live in REST_FRAMEWORK's
DEFAULT_THROTTLE_RATES (env API_THROTTLE_*) and are read per request: DRF's own class
attribute freezes the rates at import, which would make them impossible to change in
tests or with override_settings.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle

from accounts.emails import email_key


class _RateFromSettings:
    scope: str

    def get_rate(self):
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate set for the {self.scope!r} scope") from None


def _email_key(request) -> str | None:
    """A hash of the canonical email in the request body (accounts.emails.email_key).

    Every look-alike spelling of an address (`bf@ſec.test`, `BF@ｓec.test`) shares the
    address's count; keys stay short and hold no address.
    """
    data = request.data
    email = data.get("email") if isinstance(data, dict) else None
    if not isinstance(email, str) or not email.strip():
        return None
    return email_key(email)


class UserThrottle(_RateFromSettings, UserRateThrottle):
    """Every API call, per user (per IP for anonymous callers)."""

    scope = "user"


class MLActionThrottle(_RateFromSettings, UserRateThrottle):
    """Sync, sync-all and refresh, per user: each one spends the app-wide ML request budget."""

    scope = "ml_action"


class InviteThrottle(_RateFromSettings, UserRateThrottle):
    """Invitations a user sends (each is an email to someone else's address)."""

    scope = "invite"


class _IPThrottle(_RateFromSettings, SimpleRateThrottle):
    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginIPThrottle(_IPThrottle):
    scope = "login_ip"


class RegisterIPThrottle(_IPThrottle):
    scope = "register_ip"


class RegisterEmailThrottle(_RateFromSettings, SimpleRateThrottle):
    scope = "register_email"

    def get_cache_key(self, request, view):
        key = _email_key(request)
        return None if key is None else self.cache_format % {"scope": self.scope, "ident": key}


class LoginFailureThrottle(_RateFromSettings, SimpleRateThrottle):
    """Failed logins per email address; the login view records each failure.

    Only failures count, so a user who logs in often is never locked out by it; once the
    limit is reached every attempt for that address is refused until the window passes,
    the right password included, or guessing would simply carry on.
    """

    scope = "login_failures"

    def get_cache_key(self, request, view):
        key = _email_key(request)
        return None if key is None else self.cache_format % {"scope": self.scope, "ident": key}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.history = self._recent()
        return len(self.history) < self.num_requests

    def record_failure(self, request, view) -> None:
        key = self.get_cache_key(request, view)
        if key is None or self.rate is None:
            return
        self.key = key
        history = self._recent()
        history.insert(0, self.now)
        self.cache.set(self.key, history, self.duration)

    def _recent(self) -> list[float]:
        self.now = self.timer()
        return [moment for moment in self.cache.get(self.key, []) if moment > self.now - self.duration]


def ml_action_wait(request) -> float | None:
    """Count one ML action of `request.user` against the API's `ml_action` limit.

    The dashboard's "sync now", "sync all" and "renew token" call this, so that they and
    the API share one count per user (the same throttle, the same cache keys). Returns
    None when the action may go ahead, otherwise the seconds to wait.
    """
    throttle = MLActionThrottle()
    if throttle.allow_request(request, None):
        return None
    return throttle.wait() or 0.0


def invite_wait(request) -> float | None:
    """Count one invitation of `request.user` against the `invite` limit, shared by the
    dashboard and the API. None when it may go ahead, otherwise the seconds to wait."""
    throttle = InviteThrottle()
    if throttle.allow_request(request, None):
        return None
    return throttle.wait() or 0.0
