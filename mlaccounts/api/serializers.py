"""Input and output shapes of the API, camelCase on the wire (api-contract.md).

Input serializers only check types and shapes and rename fields to the services'
keyword arguments (``source=``); the rules (ranges, uniqueness, the one primary) live in
accounts.services, whose errors the envelope maps back to these camelCase names.
Output serializers never name a token field.
"""

from __future__ import annotations

import re
from datetime import UTC

from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import (
    MAX_ANSWER_LENGTH,
    MAX_SYNC_INTERVAL,
    MIN_SYNC_INTERVAL,
    AccountStatus,
    AccountType,
    Role,
    SyncStatus,
    Workspace,
)
from accounts.services import (
    MAX_ML_USER_ID,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_TEXT,
    MAX_TOKEN_LENGTH,
    MIN_PASSWORD_LENGTH,
    ML_USER_ID_PATTERN,
    ML_USER_ID_RE,
    SITE_ID_PATTERN,
)
from mlaccounts.api.schema import TEXT_PATTERN

# --- strict fields: a number where text belongs (or text where a number belongs) is a 400 ---


class StrictCharField(serializers.CharField):
    """Text only; DRF's CharField would quietly turn 12 into "12"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """JSON integers only; DRF's IntegerField also takes "12", 12.0 and true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID as text only (DRF's also takes integers); any other value is a 400."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 36:
            self.fail("invalid", value=str(data)[:40])
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false only; DRF's BooleanField also takes "yes", 1 and "on"."""

    default_error_messages = {"invalid": _("Must be true or false.")}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class MillisecondsField(StrictIntegerField):
    """syncInterval: milliseconds on the wire (min/max too), whole seconds in the model."""

    def run_validation(self, data=serializers.empty):
        # Range validators see the milliseconds the client sent; the services get seconds.
        value = super().run_validation(data)
        return None if value is None else value // 1000

    def to_representation(self, value):
        return int(value) * 1000


_ML_USER_ID_STRING = {"type": "string", "pattern": ML_USER_ID_PATTERN}


@extend_schema_field({**_ML_USER_ID_STRING, "description": "Mercado Livre's user id, a string of digits."})
class MLUserIdField(serializers.Field):
    """ML user ids exceed 32 bits: a string of digits on the wire; an integer is accepted too.

    Exactly what the schema states: ASCII digits without a leading zero or spaces (str.isdigit
    would take "²", "①" and "１２３"), or a JSON integer, from 1 to MAX_ML_USER_ID.
    """

    default_error_messages = {"invalid": _("Must be a positive whole number (digits only).")}

    def to_internal_value(self, data):
        # Matched before int(): a megabyte of digits must not reach the conversion.
        if isinstance(data, str) and ML_USER_ID_RE.fullmatch(data):
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int) or not 0 < data <= MAX_ML_USER_ID:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return str(value)


@extend_schema_field(
    {
        "oneOf": [_ML_USER_ID_STRING, {"type": "integer", "minimum": 1, "maximum": MAX_ML_USER_ID}],
        "description": "Mercado Livre's user id: a string of digits, or a JSON integer.",
    }
)
class MLUserIdInputField(MLUserIdField):
    pass


@extend_schema_field({"type": "boolean", "enum": [True]})
class TrueOnlyField(StrictBooleanField):
    """isPrimary: only true can be set (an account stops being primary when another becomes it)."""

    default_error_messages = {"invalid": _("Only true is accepted.")}

    def to_internal_value(self, data):
        if data is not True:
            self.fail("invalid")
        return data


# The token expiry: ISO 8601 date and time, years 2000 to 2099 (a far date overflows datetime
# arithmetic, UTC conversion and DB adapters, instead of failing validation), with an offset
# (Z or ±hh:mm) or without one (then in the server's TIME_ZONE). Checked on the text as
# written, by a pattern exact enough (month lengths, leap years) for the schema to state it.
_YEAR = r"20[0-9]{2}"
_LEAP_YEAR = r"20(?:[02468][048]|[13579][26])"
_DATE = (
    rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rf"|{_LEAP_YEAR}-02-29)"
)
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
_OFFSET = r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
EXPIRY_PATTERN = rf"^{_DATE}T{_TIME}{_OFFSET}$"
_EXPIRY_RE = re.compile(EXPIRY_PATTERN, re.ASCII)


@extend_schema_field(
    {
        "type": "string",
        "pattern": EXPIRY_PATTERN,
        "description": (
            "ISO 8601 date and time (`2030-01-31T10:00:00Z`), years 2000 to 2099; without an offset "
            "it is the server's local time."
        ),
    }
)
class ExpiryField(serializers.DateTimeField):
    default_error_messages = {
        "range": _("Must be a date and time such as 2030-01-31T10:00:00Z, in the years 2000 to 2099."),
    }

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _EXPIRY_RE.fullmatch(value):
            self.fail("range")
        # Hand services an aware UTC datetime whatever offset the client used.
        return super().to_internal_value(value).astimezone(UTC)


@extend_schema_field(
    {
        "type": "string",
        "minLength": MIN_PASSWORD_LENGTH,
        "maxLength": MAX_PASSWORD_LENGTH,
        "pattern": r"^[^\x00]*[^0-9\x00][^\x00]*$",
        "writeOnly": True,
        "description": (
            f"At least {MIN_PASSWORD_LENGTH} characters, not only digits; also refused: a common "
            "password, or one too similar to the email or the names."
        ),
    }
)
class NewPasswordField(serializers.Field):
    """A new password as sent (never trimmed); the rules are the services' (Django's validators).

    Not a CharField: drf-spectacular would state DRF's blank check ("minLength: 1") over
    the real minimum. The messages are DRF's own (and its translations).
    """

    default_error_messages = {
        "invalid": serializers.CharField.default_error_messages["invalid"],
        "null": ProhibitNullCharactersValidator.message,
        "max_length": serializers.CharField.default_error_messages["max_length"],
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            self.fail("null")
        if len(data) > MAX_PASSWORD_LENGTH:
            self.fail("max_length", max_length=MAX_PASSWORD_LENGTH)
        return data


class NullIfBlankChoiceField(serializers.ChoiceField):
    """lastSyncStatus: the model's "" (never synced) is null on the wire."""

    def to_representation(self, value):
        return value or None


class NullIfBlankCharField(serializers.CharField):
    def to_representation(self, value):
        return value or None


# --- auth -------------------------------------------------------------------------------


class UserSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True, help_text="The user's id, as a string.")
    email = serializers.EmailField(read_only=True)
    firstName = serializers.CharField(source="first_name", read_only=True)
    lastName = serializers.CharField(source="last_name", read_only=True)


class AuthResultSerializer(serializers.Serializer):
    user = UserSerializer(read_only=True)
    token = serializers.CharField(read_only=True, help_text="Send as `Authorization: Bearer <token>`.")


class RegisterSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    password = NewPasswordField(write_only=True)
    firstName = StrictCharField(
        source="first_name", max_length=MAX_NAME_LENGTH, required=False, allow_blank=True
    )
    lastName = StrictCharField(
        source="last_name", max_length=MAX_NAME_LENGTH, required=False, allow_blank=True
    )


class LoginSerializer(serializers.Serializer):
    email = StrictCharField(max_length=254)
    password = StrictCharField(max_length=MAX_PASSWORD_LENGTH, trim_whitespace=False, write_only=True)


# --- accounts -----------------------------------------------------------------------------


class CachedDataSerializer(serializers.Serializer):
    """The counts of the last successful sync; null before the first one."""

    products = serializers.IntegerField(source="cached_products", allow_null=True, read_only=True)
    orders = serializers.IntegerField(source="cached_orders", allow_null=True, read_only=True)
    questions = serializers.IntegerField(source="cached_questions", allow_null=True, read_only=True)
    claims = serializers.IntegerField(source="cached_claims", allow_null=True, read_only=True)
    issues = serializers.IntegerField(
        source="cached_issues", allow_null=True, read_only=True, help_text="questions + claims"
    )
    lastUpdated = serializers.DateTimeField(source="cached_at", allow_null=True, read_only=True)


class MLAccountSerializer(serializers.Serializer):
    """The account object of api-contract.md."""

    id = serializers.UUIDField(read_only=True)
    workspaceId = serializers.UUIDField(source="workspace_id", read_only=True)
    role = serializers.ChoiceField(
        choices=Role.choices, read_only=True, help_text="Your role in the account's workspace."
    )
    mlUserId = MLUserIdField(source="ml_user_id", read_only=True)
    nickname = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)
    siteId = serializers.CharField(source="site_id", read_only=True)
    accountName = serializers.CharField(source="account_name", read_only=True)
    accountType = serializers.ChoiceField(source="account_type", choices=AccountType.choices, read_only=True)
    status = serializers.ChoiceField(choices=AccountStatus.choices, read_only=True)
    isPrimary = serializers.BooleanField(source="is_primary", read_only=True)
    syncEnabled = serializers.BooleanField(source="sync_enabled", read_only=True)
    syncInterval = MillisecondsField(source="sync_interval", read_only=True, help_text="Milliseconds.")
    notificationsEnabled = serializers.BooleanField(
        source="notifications_enabled", read_only=True, help_text="Alerts about this account are raised."
    )
    emailNotificationsEnabled = serializers.BooleanField(
        source="email_notifications_enabled",
        read_only=True,
        help_text="Alerts about this account are also emailed (to the members who chose email).",
    )
    lastSync = serializers.DateTimeField(source="last_sync", allow_null=True, read_only=True)
    nextSync = serializers.DateTimeField(source="next_sync", allow_null=True, read_only=True)
    lastSyncStatus = NullIfBlankChoiceField(
        source="last_sync_status",
        choices=[c for c in SyncStatus.values if c],
        allow_null=True,
        read_only=True,
    )
    lastSyncError = NullIfBlankCharField(source="last_sync_error", allow_null=True, read_only=True)
    cachedData = CachedDataSerializer(source="*", read_only=True)
    errorCount = serializers.IntegerField(source="error_count", read_only=True)
    tokenExpiresAt = serializers.DateTimeField(source="token_expires_at", allow_null=True, read_only=True)
    lastTokenRefresh = serializers.DateTimeField(source="last_token_refresh", allow_null=True, read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)


class MLAccountListSerializer(serializers.Serializer):
    accounts = MLAccountSerializer(many=True, read_only=True)
    total = serializers.IntegerField(read_only=True)


class _SyncIntervalMs(MillisecondsField):
    def __init__(self, **kwargs):
        super().__init__(
            source="sync_interval",
            min_value=MIN_SYNC_INTERVAL * 1000,
            max_value=MAX_SYNC_INTERVAL * 1000,
            help_text="Milliseconds (stored as whole seconds).",
            **kwargs,
        )


class ConnectSerializer(serializers.Serializer):
    """POST /api/ml-accounts: connect a seller with a token pair."""

    mlUserId = MLUserIdInputField(source="ml_user_id")
    nickname = StrictCharField(max_length=MAX_TEXT)
    email = StrictEmailField(max_length=254)
    accessToken = StrictCharField(source="access_token", max_length=MAX_TOKEN_LENGTH, write_only=True)
    refreshToken = StrictCharField(source="refresh_token", max_length=MAX_TOKEN_LENGTH, write_only=True)
    tokenExpiresAt = ExpiryField(source="token_expires_at")
    accountName = StrictCharField(
        source="account_name",
        max_length=MAX_TEXT,
        required=False,
        allow_blank=True,
        help_text="Defaults to nickname.",
    )
    accountType = serializers.ChoiceField(source="account_type", choices=AccountType.choices, required=False)
    syncInterval = _SyncIntervalMs(required=False)
    siteId = StrictCharField(
        source="site_id",
        min_length=2,
        max_length=4,
        trim_whitespace=False,
        validators=[RegexValidator(SITE_ID_PATTERN, _("Must be a Mercado Livre site id such as MLB."))],
        required=False,
        help_text='Default "MLB".',
    )
    workspaceId = StrictUUIDField(
        source="workspace_id",
        required=False,
        help_text="The workspace to connect into (you must be a manager or owner there); "
        "your personal workspace by default.",
    )


class UpdateSerializer(serializers.Serializer):
    """PUT/PATCH /api/ml-accounts/:id: every field optional, unknown fields ignored."""

    accountName = StrictCharField(source="account_name", max_length=MAX_TEXT, required=False)
    accountType = serializers.ChoiceField(source="account_type", choices=AccountType.choices, required=False)
    syncInterval = _SyncIntervalMs(required=False)
    isPrimary = TrueOnlyField(
        source="is_primary",
        required=False,
        help_text="Only true: makes this the primary account and demotes the previous one.",
    )
    notificationsEnabled = StrictBooleanField(source="notifications_enabled", required=False)
    emailNotificationsEnabled = StrictBooleanField(source="email_notifications_enabled", required=False)


class TokenInfoSerializer(serializers.Serializer):
    """tokenInfo (accounts.tokens.token_info, already camelCase)."""

    accountId = serializers.UUIDField(read_only=True)
    mlUserId = serializers.CharField(read_only=True)
    tokenExpiry = serializers.DateTimeField(allow_null=True, read_only=True)
    timeToExpiry = serializers.IntegerField(
        allow_null=True, read_only=True, help_text="Whole seconds, negative once expired."
    )
    healthPercent = serializers.IntegerField(min_value=0, max_value=100, read_only=True)
    isExpired = serializers.BooleanField(read_only=True)
    needsRefresh = serializers.BooleanField(read_only=True)
    lastTokenRefresh = serializers.DateTimeField(allow_null=True, read_only=True)


class TokenStatusSerializer(serializers.Serializer):
    """GET /api/ml-accounts/:id/token-info."""

    accountId = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(choices=AccountStatus.choices, read_only=True)
    tokenInfo = TokenInfoSerializer(read_only=True)


class RefreshResultSerializer(TokenStatusSerializer):
    """PUT|POST /api/ml-accounts/:id/refresh-token."""

    tokenExpiresAt = serializers.DateTimeField(allow_null=True, read_only=True)


class SyncResultSerializer(serializers.Serializer):
    """POST /api/ml-accounts/:id/sync."""

    accountId = serializers.UUIDField(read_only=True)
    syncedAt = serializers.DateTimeField(read_only=True)
    data = CachedDataSerializer(read_only=True)


class SyncAllItemSerializer(serializers.Serializer):
    # `data` xor `error`/`code`: not read-only, as drf-spectacular marks read-only fields required.
    accountId = serializers.UUIDField(read_only=True)
    success = serializers.BooleanField(read_only=True)
    data = CachedDataSerializer(required=False, help_text="The new counts, on success.")
    error = serializers.CharField(required=False, help_text="Why it failed, on failure.")
    code = serializers.CharField(
        required=False,
        help_text="On failure: TOKEN_EXPIRED (also for an expired account, which sync-all skips: "
        "resume it to try again), ML_RATE_LIMITED, ML_UNAVAILABLE, SYNC_IN_PROGRESS, ACCOUNT_PAUSED, "
        "NOT_FOUND, INTERNAL_ERROR; TIMEOUT (sync-all's answer) or PENDING (a job's) for a sync "
        "still running.",
    )


class SyncAllSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField(read_only=True)
    successful = serializers.IntegerField(read_only=True)
    failed = serializers.IntegerField(read_only=True)


class SyncAllSerializer(serializers.Serializer):
    results = SyncAllItemSerializer(many=True, read_only=True)
    summary = SyncAllSummarySerializer(read_only=True)


class SyncJobSummarySerializer(SyncAllSummarySerializer):
    pending = serializers.IntegerField(read_only=True, help_text="Syncs still running.")


class SyncJobSerializer(serializers.Serializer):
    """A sync-all job: 202 of POST sync-all with `Prefer: respond-async`, GET /api/sync-jobs/:id."""

    jobId = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(
        choices=[("running", "running"), ("done", "done")],
        read_only=True,
        help_text="done once every sync has ended.",
    )
    createdAt = serializers.DateTimeField(read_only=True)
    results = SyncAllItemSerializer(many=True, read_only=True)
    summary = SyncJobSummarySerializer(read_only=True)


# --- workspaces ---------------------------------------------------------------------------


class WorkspaceSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True, help_text="Your role in it.")
    isPersonal = serializers.BooleanField(
        read_only=True, help_text="Your personal workspace (not deletable)."
    )
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class WorkspaceListSerializer(serializers.Serializer):
    workspaces = WorkspaceSerializer(many=True, read_only=True)
    total = serializers.IntegerField(read_only=True)


class WorkspaceInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=Workspace.MAX_NAME)


class AccountIdsField(serializers.ListField):
    """accountIds: null (every account of the workspace) or a list of its account ids."""

    def __init__(self, **kwargs):
        super().__init__(
            child=StrictUUIDField(),
            allow_null=True,
            max_length=1000,
            help_text="null: every account of the workspace; otherwise only these accounts.",
            **kwargs,
        )


class MemberSerializer(serializers.Serializer):
    userId = serializers.CharField(source="user_id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    firstName = serializers.CharField(source="user.first_name", read_only=True)
    lastName = serializers.CharField(source="user.last_name", read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)
    accountIds = serializers.ListField(
        source="account_ids",
        child=serializers.UUIDField(),
        allow_null=True,
        read_only=True,
        help_text="null: every account of the workspace.",
    )
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class MemberListSerializer(serializers.Serializer):
    members = MemberSerializer(many=True, read_only=True)
    total = serializers.IntegerField(read_only=True)


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    accountIds = AccountIdsField(source="account_ids", required=False)


class InvitationInputSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)
    accountIds = AccountIdsField(source="account_ids", required=False, default=None)


class InvitationSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)
    accountIds = serializers.ListField(
        source="account_ids", child=serializers.UUIDField(), allow_null=True, read_only=True
    )
    expiresAt = serializers.DateTimeField(source="expires_at", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class InvitationCreatedSerializer(InvitationSerializer):
    acceptUrl = serializers.URLField(
        read_only=True,
        help_text="The page that accepts it; its last path segment is the token. Shown only now.",
    )
    emailSent = serializers.BooleanField(
        read_only=True, help_text="false: the email could not be sent; pass the link on yourself."
    )


class InvitationListSerializer(serializers.Serializer):
    invitations = InvitationSerializer(many=True, read_only=True)
    total = serializers.IntegerField(read_only=True)


class InvitationAcceptedSerializer(serializers.Serializer):
    workspaceId = serializers.UUIDField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)


class NotificationAccountSerializer(serializers.Serializer):
    accountId = serializers.UUIDField(source="id", read_only=True)
    accountName = serializers.CharField(source="account_name", read_only=True)
    nickname = serializers.CharField(read_only=True)
    lastNotificationAt = serializers.DateTimeField(
        source="last_notification_at", read_only=True, allow_null=True
    )


class NotificationHealthSerializer(serializers.Serializer):
    """data of GET /api/notifications/health (accounts.selectors.notification_health)."""

    configured = serializers.BooleanField(read_only=True)
    lastReceivedAt = serializers.DateTimeField(source="last_received_at", read_only=True, allow_null=True)
    receivedLastHour = serializers.IntegerField(source="received_last_hour", read_only=True)
    processedLastHour = serializers.IntegerField(source="processed_last_hour", read_only=True)
    failedLastHour = serializers.IntegerField(source="failed_last_hour", read_only=True)
    lagP95Seconds = serializers.FloatField(source="lag_p95_seconds", read_only=True, allow_null=True)
    silentTopics = serializers.ListField(
        source="silent_topics", child=serializers.CharField(), read_only=True
    )
    warning = serializers.BooleanField(read_only=True)
    accounts = NotificationAccountSerializer(many=True, read_only=True)
    total = serializers.IntegerField(read_only=True)


# --- the seller's desk --------------------------------------------------------------------


class LowerCaseChoiceField(serializers.ChoiceField):
    """ML's upper-case statuses in lower case on the wire ("UNANSWERED" -> "unanswered")."""

    def to_representation(self, value):
        return str(value).lower()


class QuestionSerializer(serializers.Serializer):
    """A buyer's question (accounts.selectors.question_queue_for_user); `now` in the context."""

    id = serializers.IntegerField(read_only=True, help_text="Mercado Livre's question id.")
    accountId = serializers.UUIDField(source="account_id", read_only=True)
    itemId = serializers.CharField(source="item_id", read_only=True, help_text="Mercado Livre's item id.")
    itemTitle = NullIfBlankCharField(
        source="item_title", allow_null=True, read_only=True, help_text="null while unknown."
    )
    text = serializers.CharField(read_only=True)
    dateCreated = serializers.DateTimeField(source="date_created", read_only=True)
    ageSeconds = serializers.SerializerMethodField(help_text="Whole seconds since it was asked.")
    status = LowerCaseChoiceField(
        choices=[("unanswered", "unanswered"), ("answered", "answered")],
        read_only=True,
        help_text="answered: answered through this app.",
    )

    def get_ageSeconds(self, question) -> int:
        # One `now` for the whole page, so that the ages agree with its order.
        return max(0, int((self.context["now"] - question.date_created).total_seconds()))


class QuestionListSerializer(serializers.Serializer):
    questions = QuestionSerializer(many=True, read_only=True)
    total = serializers.IntegerField(read_only=True)


class AnswerInputSerializer(serializers.Serializer):
    """POST /api/questions/:id/answer. The rules are the service's (question_answer); the
    field states them for the schema: the text as sent, not blank once trimmed, at most
    MAX_ANSWER_LENGTH characters."""

    text = StrictCharField(
        max_length=MAX_ANSWER_LENGTH,
        trim_whitespace=False,
        error_messages={"blank": _("Write an answer.")},
        validators=[RegexValidator(TEXT_PATTERN, _("Write an answer."))],
        help_text="Sent to Mercado Livre trimmed.",
    )


class ClaimSerializer(serializers.Serializer):
    """An open claim against one of the accounts (accounts.selectors.claim_list_for_user)."""

    id = serializers.IntegerField(read_only=True, help_text="Mercado Livre's claim id.")
    accountId = serializers.UUIDField(source="account_id", read_only=True)
    orderId = serializers.IntegerField(
        source="order_id", allow_null=True, read_only=True, help_text="null when not about an order."
    )
    type = serializers.CharField(read_only=True, help_text="Mercado Livre's claim type (mediations, …).")
    stage = serializers.CharField(read_only=True, help_text="claim, dispute, …")
    reasonId = serializers.CharField(source="reason_id", read_only=True)
    dueDate = serializers.DateTimeField(
        source="due_date", allow_null=True, read_only=True, help_text="When the next action is due."
    )
    actionResponsible = NullIfBlankCharField(
        source="action_responsible",
        allow_null=True,
        read_only=True,
        help_text="Who must act next (seller, buyer, mediator); null while unknown.",
    )
    dateCreated = serializers.DateTimeField(source="date_created", read_only=True)


class ClaimListSerializer(serializers.Serializer):
    claims = ClaimSerializer(many=True, read_only=True)
    total = serializers.IntegerField(read_only=True)
