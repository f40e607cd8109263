"""The REST API of the audit log (issue 16): `GET /api/audit`, read only.

Owners and managers read it (accounts.selectors.audit); a member below manager is refused
with 403 for an account or a workspace they can see, and anybody gets 404 for what they
cannot see or a malformed id. Without `accountId` or `workspaceId`: the entries of every
workspace where the caller is owner or manager (none for a caller who manages none). 50 a
page, newest first. Other methods answer 405: entries are never changed or deleted.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers
from rest_framework.views import APIView

from accounts import selectors
from accounts.models import AuditAction
from mlaccounts.api.exceptions import envelope
from mlaccounts.api.schema import PAGE, api_operation, envelope_of
from mlaccounts.api.serializers import NullIfBlankCharField
from mlaccounts.api.workspaces import page_of

AUDIT = "audit"

AUDIT_ACCOUNT = OpenApiParameter(
    "accountId",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    description="Only this account's entries (its id, a UUID); absent or empty: every account. An "
    "account you cannot see, or a malformed id, answers 404; one you see below manager, 403.",
)
AUDIT_WORKSPACE = OpenApiParameter(
    "workspaceId",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    description="Only this workspace's entries (its id, a UUID); absent or empty: every workspace "
    "where you are owner or manager. Not a member, or a malformed id: 404; below manager: 403.",
)
AUDIT_ACTION = OpenApiParameter(
    "action",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    enum=AuditAction.values,
    description="Only the entries of this action.",
)


class AuditEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    action = serializers.ChoiceField(choices=AuditAction.choices, read_only=True)
    actorEmail = NullIfBlankCharField(
        source="actor_email",
        allow_null=True,
        read_only=True,
        help_text="Who acted, as their address was then; null when nobody signed in did (a "
        "store owner through a reconnect link).",
    )
    accountId = serializers.UUIDField(
        source="account_id",
        allow_null=True,
        read_only=True,
        help_text="null for the workspace's own entries.",
    )
    at = serializers.DateTimeField(read_only=True)
    ip = serializers.IPAddressField(allow_null=True, read_only=True)
    changes = serializers.DictField(
        read_only=True,
        help_text='What changed, `{"field": [from, to]}`, or facts about the action '
        '(`{"question": 123, "item": "MLB1"}`).',
    )


class AuditListSerializer(serializers.Serializer):
    entries = AuditEntrySerializer(many=True, read_only=True)
    total = serializers.IntegerField(read_only=True)


AuditListResponse = envelope_of("AuditListResponse", AuditListSerializer())


class AuditListView(APIView):
    @api_operation(
        operation_id="listAuditEntries",
        summary="The audit log: who did what, newest first (owners and managers)",
        description="Every action of a person: connect, reconnect, remove, pause, resume, settings, "
        "sync now, token renewals, answers, member and invitation changes, sign-ins. 50 a page, "
        "`total` entries. A manager limited to chosen accounts reads those accounts' entries only. "
        "Read only: entries cannot be changed or deleted.",
        tag=AUDIT,
        ok={200: AuditListResponse},
        errors={400: ("VALIDATION_ERROR",), 404: ("NOT_FOUND",)},
        parameters=[AUDIT_ACCOUNT, AUDIT_WORKSPACE, AUDIT_ACTION, PAGE],
    )
    def get(self, request):
        action = request.query_params.get("action")
        if action is not None and action not in AuditAction.values:
            message = _("Must be one of: %(actions)s.") % {"actions": ", ".join(AuditAction.values)}
            raise exceptions.ValidationError({"action": [message]})
        entries = selectors.audit_entries_for_user(
            user=request.user,
            workspace_id=request.query_params.get("workspaceId"),
            account_id=request.query_params.get("accountId"),
            action=action or "",
        )
        items, total = page_of(request, entries)
        return envelope(AuditListSerializer({"entries": items, "total": total}).data)
