"""The API's own failures, each with its machine code (the envelope's `code`).

Kept apart from the handler (exceptions.py) so the parser can raise them without
importing rest_framework.views, which would import the parser back through api_settings.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status


class ApiError(exceptions.APIException):
    """A failure with its own machine code; ``retry_after`` (seconds) becomes Retry-After."""

    status_code = status.HTTP_400_BAD_REQUEST
    error_code = "BAD_REQUEST"
    default_detail = _("The request could not be completed.")

    def __init__(self, message=None, *, errors: dict | None = None, retry_after: float | None = None):
        super().__init__(detail=message or self.default_detail)
        self.errors = errors
        self.retry_after = retry_after


class MissingCredentials(ApiError):
    error_code = "MISSING_CREDENTIALS"
    default_detail = _("Email and password are required.")


class InvalidCredentials(ApiError):
    status_code = status.HTTP_401_UNAUTHORIZED
    error_code = "INVALID_CREDENTIALS"
    default_detail = _("Invalid email or password.")


class TokenExpired(ApiError):
    """Mercado Livre's token for the account is dead and cannot be renewed (not our auth)."""

    status_code = status.HTTP_401_UNAUTHORIZED
    error_code = "TOKEN_EXPIRED"
    default_detail = _("The Mercado Livre authorization expired; reconnect the account.")


class TokenRefreshFailed(ApiError):
    status_code = status.HTTP_401_UNAUTHORIZED
    error_code = "TOKEN_REFRESH_FAILED"
    default_detail = _("Mercado Livre refused to renew the token; reconnect the account.")


class MLRateLimitedError(ApiError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    error_code = "ML_RATE_LIMITED"
    default_detail = _("Mercado Livre's rate limit was reached; try again later.")


class MLUnavailableError(ApiError):
    status_code = status.HTTP_502_BAD_GATEWAY
    error_code = "ML_UNAVAILABLE"
    default_detail = _("Mercado Livre failed or did not answer in time; try again later.")


class RequestTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    error_code = "REQUEST_TOO_LARGE"
    default_detail = _("The request body is too large.")


class ServiceUnavailable(ApiError):
    """Redis (the queue) did not answer; throttles do not need it (mlaccounts.outages)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    error_code = "SERVICE_UNAVAILABLE"
    default_detail = _("The service is briefly unavailable; try again in a minute.")
