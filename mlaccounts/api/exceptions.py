"""The API's one answer shape, and the mapping of every failure to it (api-contract.md).

Success: ``{"success": true, "data": …, "message"?: …}``.
Failure: ``{"success": false, "message": …, "code": …, "errors"?: {field: [..]}}``.

Domain errors map by their ``code``, DRF's own errors by their class, and anything
unexpected becomes a 500 ``INTERNAL_ERROR`` carrying a request id that is also logged, so
an operator can find the traceback while the client learns nothing about internals.
"""

from __future__ import annotations

import logging
import math
import re
import uuid

from django.core.exceptions import (
    ObjectDoesNotExist,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from accounts.errors import DomainError
from mlaccounts.api.errors import ApiError, RequestTooLarge, ServiceUnavailable
from mlaccounts.outages import RETRY_AFTER, UNAVAILABLE_ERRORS

logger = logging.getLogger(__name__)

# The realm every 401 names, so that each one carries WWW-Authenticate (RFC 9110 §15.5.2).
WWW_AUTHENTICATE = 'Bearer realm="api"'
# Retry-After when a throttle cannot say (DRF's wait() may be None) or ML did not.
DEFAULT_RETRY_AFTER = 60


# Domain error code -> HTTP status (accounts.errors).
DOMAIN_STATUS = {
    "NOT_FOUND": status.HTTP_404_NOT_FOUND,
    "VALIDATION_ERROR": status.HTTP_400_BAD_REQUEST,
    "ACCOUNT_EXISTS": status.HTTP_409_CONFLICT,
    "EMAIL_EXISTS": status.HTTP_409_CONFLICT,
    "SYNC_IN_PROGRESS": status.HTTP_409_CONFLICT,
    "NO_REFRESH_TOKEN": status.HTTP_400_BAD_REQUEST,
    "FORBIDDEN": status.HTTP_403_FORBIDDEN,
    "ACCOUNT_CONNECTED_ELSEWHERE": status.HTTP_409_CONFLICT,
    "INVITATION_INVALID": status.HTTP_400_BAD_REQUEST,
    "QUESTION_NOT_OPEN": status.HTTP_409_CONFLICT,
    "TOKEN_EXPIRED": status.HTTP_401_UNAUTHORIZED,
    "ML_UNAVAILABLE": status.HTTP_502_BAD_GATEWAY,
    "ML_RATE_LIMITED": status.HTTP_429_TOO_MANY_REQUESTS,
}

# DRF's exceptions -> machine code; the first matching class wins.
DRF_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.ValidationError, "VALIDATION_ERROR"),
    (exceptions.ParseError, "PARSE_ERROR"),
    (exceptions.NotAuthenticated, "UNAUTHORIZED"),
    (exceptions.AuthenticationFailed, "UNAUTHORIZED"),
    (exceptions.PermissionDenied, "FORBIDDEN"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.Throttled, "RATE_LIMITED"),
]

MESSAGES = {
    "VALIDATION_ERROR": _("Some fields are invalid."),
    "PARSE_ERROR": _("The request body is not valid JSON."),
    "UNAUTHORIZED": _("Authentication credentials were not provided or are not valid."),
    "NOT_FOUND": _("Not found."),
    "RATE_LIMITED": _("Too many requests; try again later."),
    "INTERNAL_ERROR": _("An unexpected error occurred; it was logged with this request id."),
}

_CAMEL_RE = re.compile(r"_([a-z0-9])")


def camel(name: str) -> str:
    """``token_expires_at`` -> ``tokenExpiresAt``: services name fields as the model does."""
    return _CAMEL_RE.sub(lambda match: match.group(1).upper(), str(name))


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, item in value.items() for message in _messages(item)]
    if isinstance(value, list | tuple):
        return [message for item in value for message in _messages(item)]
    return [str(value)]


def field_errors(detail) -> dict[str, list[str]]:
    """Normalise DRF's or a service's error detail to ``{camelCaseField: [messages]}``."""
    if isinstance(detail, dict):
        return {camel(key): _messages(value) for key, value in detail.items()}
    return {"nonFieldErrors": _messages(detail)}


def error_body(*, code: str, message, errors: dict | None = None, request_id: str | None = None) -> dict:
    body = {"success": False, "message": str(message), "code": code}
    if errors is not None:
        body["errors"] = errors
    if request_id is not None:
        body["requestId"] = request_id
    return body


def _retry_after(seconds) -> str:
    if seconds is None:
        return str(DEFAULT_RETRY_AFTER)
    return str(max(1, math.ceil(seconds)))


def describe_exception(exc: Exception, request=None) -> tuple[int, dict, dict]:
    """(status, body, headers) for any exception raised while answering an API request."""
    if isinstance(exc, DomainError):
        errors = field_errors(exc.errors) if getattr(exc, "errors", None) is not None else None
        status_code = DOMAIN_STATUS.get(exc.code, 400)
        headers = {}
        if status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            headers["Retry-After"] = _retry_after(getattr(exc, "retry_after", None))
        if status_code == status.HTTP_401_UNAUTHORIZED:
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        return (
            status_code,
            error_body(code=exc.code, message=exc.message, errors=errors),
            headers,
        )
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        # A row that vanished between the selector and the service reads as "not found" too.
        exc = exceptions.NotFound(MESSAGES["NOT_FOUND"])
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(_("The request is malformed."))
    elif isinstance(exc, UNAVAILABLE_ERRORS):
        logger.warning(
            "API: redis unavailable",
            extra={
                "event": "service_unavailable",
                "path": getattr(request, "path", None),
                "error": type(exc).__name__,
            },
        )
        exc = ServiceUnavailable(retry_after=RETRY_AFTER)

    if isinstance(exc, ApiError):
        headers = {}
        if exc.status_code in (status.HTTP_429_TOO_MANY_REQUESTS, status.HTTP_503_SERVICE_UNAVAILABLE):
            headers["Retry-After"] = _retry_after(exc.retry_after)
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        return (
            exc.status_code,
            error_body(code=exc.error_code, message=exc.detail, errors=exc.errors),
            headers,
        )

    if isinstance(exc, exceptions.APIException):
        code = next((name for cls, name in DRF_CODES if isinstance(exc, cls)), None)
        code = code or str(exc.default_code).upper()
        headers = {}
        errors = None
        if isinstance(exc, exceptions.ValidationError):
            errors = field_errors(exc.detail)
            message = MESSAGES["VALIDATION_ERROR"]
        elif isinstance(exc.detail, dict):
            # simplejwt's InvalidToken carries {"detail", "code", "messages"}.
            message = exc.detail.get("detail") or MESSAGES.get(code, code)
        elif isinstance(exc.detail, list):
            message = " ".join(_messages(exc.detail))
        else:
            message = exc.detail
        if isinstance(exc, exceptions.Throttled):
            headers["Retry-After"] = _retry_after(exc.wait)
            message = MESSAGES["RATE_LIMITED"]
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            headers["WWW-Authenticate"] = getattr(exc, "auth_header", None) or WWW_AUTHENTICATE
        if isinstance(exc, exceptions.ParseError) and not str(message).strip():
            message = MESSAGES["PARSE_ERROR"]
        return exc.status_code, error_body(code=code, message=message, errors=errors), headers

    request_id = uuid.uuid4().hex
    logger.error(
        "unhandled API error %s",
        request_id,
        exc_info=exc,
        extra={
            "event": "api_error",
            "request_id": request_id,
            "path": getattr(request, "path", None),
            "method": getattr(request, "method", None),
        },
    )
    body = error_body(code="INTERNAL_ERROR", message=MESSAGES["INTERNAL_ERROR"], request_id=request_id)
    return status.HTTP_500_INTERNAL_SERVER_ERROR, body, {"X-Request-ID": request_id}


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every exception a view raises, unexpected ones included."""
    status_code, body, headers = describe_exception(exc, context.get("request"))
    # Roll back the request's transaction, as DRF's own handler does (ATOMIC_REQUESTS).
    set_rollback()
    return Response(body, status=status_code, headers=headers)


def error_json_response(exc, request) -> JsonResponse:
    """The same answer outside DRF (middleware), already rendered."""
    status_code, body, headers = describe_exception(exc, request)
    response = JsonResponse(body, status=status_code)
    for name, value in headers.items():
        response[name] = value
    return response


def envelope(
    data=None, *, message=None, status_code: int = 200, headers=None, with_data: bool = True
) -> Response:
    """A success answer: ``{"success": true, "data": …, "message"?: …}``."""
    body: dict = {"success": True}
    if with_data:
        body["data"] = data
    if message is not None:
        body["message"] = str(message)
    return Response(body, status=status_code, headers=headers)
