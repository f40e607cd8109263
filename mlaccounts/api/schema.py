"""OpenAPI description of the envelope and of every error code (drf-spectacular).

Each operation documents its success envelope and, per status, an error envelope whose
``code`` enumerates exactly the codes that status can carry there, so a client generated
from /api/schema/ can parse every answer, and schemathesis can hold the API to it.
"""

from __future__ import annotations

import re

from django.core.validators import RegexValidator
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers

# Choice sets of the two `success` constants, named in SPECTACULAR_SETTINGS' ENUM_NAME_OVERRIDES.
SUCCESS_TRUE_CHOICES = [(True, True)]
SUCCESS_FALSE_CHOICES = [(False, False)]

CODE_DESCRIPTIONS = {
    "VALIDATION_ERROR": "a field is missing or invalid; `errors` names each one",
    "PARSE_ERROR": "the body is not valid JSON",
    "MISSING_CREDENTIALS": "email or password missing",
    "INVALID_CREDENTIALS": "wrong email or password",
    "EMAIL_EXISTS": "a user with this email exists",
    "UNAUTHORIZED": "no or invalid credentials (see WWW-Authenticate)",
    "FORBIDDEN": "your role does not allow this (or a session request without its CSRF token)",
    "NOT_FOUND": "nothing by this id that you can see (missing, malformed, or outside your memberships)",
    "ACCOUNT_CONNECTED_ELSEWHERE": "this seller is connected in another workspace; nothing was stored",
    "INVITATION_INVALID": "the invitation is used, expired, revoked, unknown or for another address",
    "QUESTION_NOT_OPEN": "Mercado Livre no longer takes an answer to it (answered, deleted, closed…)",
    "ACCOUNT_EXISTS": "you already connected this Mercado Livre user",
    "SYNC_IN_PROGRESS": "another sync holds the account",
    "TOKEN_EXPIRED": "the Mercado Livre token is dead and cannot be renewed: the account is now expired",
    "TOKEN_REFRESH_FAILED": "Mercado Livre refused the refresh token (invalid_grant): account now expired",
    "NO_REFRESH_TOKEN": "the account has no refresh token; reconnect it",
    "ML_RATE_LIMITED": "Mercado Livre's rate limit was reached; see Retry-After",
    "ML_UNAVAILABLE": "Mercado Livre failed or timed out; the account is unchanged",
    "RATE_LIMITED": "too many requests to this API; see Retry-After",
    "REQUEST_TOO_LARGE": "the body exceeds the size limit",
    "UNSUPPORTED_MEDIA_TYPE": "the body is not application/json",
    "INTERNAL_ERROR": "an unexpected error, logged under `requestId`",
    "SERVICE_UNAVAILABLE": "Redis (the task queue) is briefly unavailable; see Retry-After",
}


@extend_schema_field({"type": "boolean", "enum": [True]})
class TrueField(serializers.BooleanField):
    pass


@extend_schema_field({"type": "boolean", "enum": [False]})
class FalseField(serializers.BooleanField):
    pass


_components: dict[str, type[serializers.Serializer]] = {}


def _component(name: str, fields: dict) -> type[serializers.Serializer]:
    # One class per component name: drf-spectacular warns about two classes sharing a name.
    if name not in _components:
        _components[name] = type(name, (serializers.Serializer,), fields)
    return _components[name]


def envelope_of(name: str, data: serializers.Field | None = None, *, message: bool = False):
    """The success envelope ``{success: true, data, message?}`` as the component `name`.

    `data` None: an answer with a message and no data (DELETE).
    """
    fields = {"success": TrueField(), "message": serializers.CharField(required=message or data is None)}
    if data is not None:
        fields["data"] = data
    return _component(name, fields)


def error_of(codes: tuple[str, ...]):
    """The failure envelope whose ``code`` is one of `codes`."""
    name = "Error" + "".join(code.title().replace("_", "") for code in codes)
    fields = {
        "success": FalseField(),
        "message": serializers.CharField(),
        "code": serializers.ChoiceField(choices=[(code, code) for code in codes]),
    }
    if {"VALIDATION_ERROR", "MISSING_CREDENTIALS"} & set(codes):
        fields["errors"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="Messages per request field (camelCase), for validation failures.",
        )
    if "INTERNAL_ERROR" in codes:
        fields["requestId"] = serializers.CharField(help_text="Quote it when reporting the error.")
    return _component(name, fields)


ACCOUNT_ID = OpenApiParameter(
    "id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The account's id. Another user's id answers 404 like one that does not exist.",
)

WORKSPACE_ID = OpenApiParameter(
    "id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The workspace's id. A workspace you are not a member of answers 404.",
)

MEMBER_ID = OpenApiParameter(
    "userId", OpenApiTypes.STR, OpenApiParameter.PATH, description="The member's user id."
)

INVITATION_ID = OpenApiParameter(
    "invitationId", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The invitation's id."
)

INVITATION_TOKEN = OpenApiParameter(
    "token",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The last path segment of the invitation's acceptUrl.",
)

PAGE = OpenApiParameter(
    "page",
    OpenApiTypes.INT,
    OpenApiParameter.QUERY,
    required=False,
    description="Page number, from 1; 50 items a page.",
)

# --- the seller's desk ---

# olderThan's ceiling: ten years of 365 days, in seconds (beyond it the date arithmetic overflows).
MAX_OLDER_THAN = 10 * 365 * 24 * 3600

QUESTION_ID = OpenApiParameter(
    "id",
    {"type": "integer", "format": "int64"},
    OpenApiParameter.PATH,
    description="Mercado Livre's question id. A question of an account you cannot see answers 404.",
)

ACCOUNT_FILTER = OpenApiParameter(
    "accountId",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    description="Only this account's (its id, a UUID); absent or empty: every account you can see. "
    "An account you cannot see, or a malformed id, answers 404.",
)

QUESTION_STATUS = OpenApiParameter(
    "status",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    enum=["unanswered", "answered"],
    default="unanswered",
    description="`unanswered`: the queue; `answered`: the questions answered through this app.",
)

DAYS = OpenApiParameter(
    "days",
    {"type": "integer", "minimum": 1, "maximum": 90, "default": 30},
    OpenApiParameter.QUERY,
    required=False,
    description="The window: the last `days` × 24 hours up to now (1 to 90, 30 when absent).",
)

WORKSPACE_FILTER = OpenApiParameter(
    "workspaceId",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    description="Only this workspace's accounts (its id, a UUID); absent or empty: every account you "
    "can see. A workspace you are not a member of, or a malformed id, answers 404.",
)

OLDER_THAN = OpenApiParameter(
    "olderThan",
    {"type": "integer", "minimum": 0, "maximum": MAX_OLDER_THAN},
    OpenApiParameter.QUERY,
    required=False,
    description="Only the questions asked at least this many seconds ago.",
)

JOB_ID = OpenApiParameter(
    "id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The sync job's id. Another user's job answers 404 like one that does not exist.",
)

PREFER_ASYNC = OpenApiParameter(
    "Prefer",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="RFC 7240 preferences. With `respond-async` among them the answer is 202 at once, "
    "with the job and a `Location` header to poll, instead of waiting for the syncs. Any other "
    "preference is ignored.",
)

_AUTH_ERRORS = {401: ("UNAUTHORIZED",), 403: ("FORBIDDEN",)}
_BODY_ERRORS = {
    400: ("VALIDATION_ERROR", "PARSE_ERROR"),
    413: ("REQUEST_TOO_LARGE",),
    415: ("UNSUPPORTED_MEDIA_TYPE",),
}


def _merge(*sources: dict[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
    merged: dict[int, list[str]] = {}
    for source in sources:
        for status_code, codes in source.items():
            merged.setdefault(status_code, [])
            merged[status_code] += [code for code in codes if code not in merged[status_code]]
    return {status_code: tuple(codes) for status_code, codes in sorted(merged.items())}


def api_operation(
    *,
    operation_id: str,
    summary: str,
    tag: str,
    ok: dict[int, type[serializers.Serializer]],
    errors: dict[int, tuple[str, ...]] | None = None,
    request=None,
    authenticated: bool = True,
    account_id: bool = False,
    validation: bool = True,
    description: str | None = None,
    parameters: list[OpenApiParameter] | None = None,
):
    """extend_schema for one operation: its success and every error it can answer.

    `validation` False: a body the view does not validate field by field (login answers
    MISSING_CREDENTIALS instead of VALIDATION_ERROR).
    """
    common = _AUTH_ERRORS if authenticated else {}
    body = {}
    if request is not None:
        body = dict(_BODY_ERRORS)
        if not validation:
            body[400] = ("PARSE_ERROR",)
    always = {429: ("RATE_LIMITED",), 500: ("INTERNAL_ERROR",), 503: ("SERVICE_UNAVAILABLE",)}
    all_errors = _merge(body, errors or {}, common, always)
    responses: dict[int, OpenApiResponse] = {
        status_code: OpenApiResponse(serializer, description="Success.")
        for status_code, serializer in ok.items()
    }
    for status_code, codes in all_errors.items():
        text = "; ".join(f"`{code}`: {CODE_DESCRIPTIONS[code]}" for code in codes)
        if status_code in (429, 503):
            text += ". The `Retry-After` header gives the seconds to wait."
        responses[status_code] = OpenApiResponse(error_of(codes), description=text)
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        tags=[tag],
        request=request,
        responses=responses,
        parameters=([ACCOUNT_ID] if account_id else []) + (parameters or []) or None,
    )


_OPTIONAL_SLASH = re.compile(r"/\?$")


def postprocess_paths(result, generator, request, public):
    """Publish paths as the contract writes them, without the optional trailing slash."""
    result["paths"] = {
        _OPTIONAL_SLASH.sub("", path).rstrip("/") or "/": item for path, item in result["paths"].items()
    }
    return result


class VersionedJWTScheme(SimpleJWTScheme):
    """The bearer scheme for our subclass of simplejwt's authentication (token versions)."""

    target_class = "mlaccounts.api.authentication.JWTAuthentication"


# DRF's CharField refuses NUL characters, and text that is blank once trimmed unless
# allow_blank: patterns saying so, for the schema to state what the server enforces.
# Trimming is Python's str.strip(), whose whitespace (str.isspace) includes the separators
# \x1c-\x1f that an ECMA-262 `\s` (the schema's regex dialect) does not: spell them out.
_PY_WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^[^\x00]*[^\x00{_PY_WHITESPACE}][^\x00]*$"
# Non-empty on purpose: for an allow_blank field drf-spectacular adds "" as a oneOf branch
# of its own ({"maxLength": 0}), and a pattern that matched "" too would make "" match both
# branches, which oneOf forbids (schemathesis then sent "" as invalid; the server took it).
NO_NUL_PATTERN = r"^[^\x00]+$"


class StrictCharFieldScheme(OpenApiSerializerFieldExtension):
    """Our text fields' schema, with the pattern of DRF's built-in checks."""

    target_class = "mlaccounts.api.serializers.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        # A field with a pattern of its own (a RegexValidator) states it instead; drf-spectacular
        # adds it after this.
        own_pattern = any(isinstance(v, RegexValidator) for v in self.target.validators)
        if "pattern" not in schema and not own_pattern:
            blank_ok = self.target.allow_blank or not self.target.trim_whitespace
            schema["pattern"] = NO_NUL_PATTERN if blank_ok else TEXT_PATTERN
        return schema
