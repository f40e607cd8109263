"""The REST API of workspaces, members and invitations (issue 11), in the envelope.

Like the account endpoints: the access helper (accounts.selectors.workspace_get_for_user)
answers 404 for a workspace the caller is not a member of and 403 when their role does not
allow the action; members and invitations are the owners' (Can.ADMIN). Lists are paged,
50 a page (`?page=`), in a stated order.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.roles import Can
from mlaccounts import invitations
from mlaccounts.api import serializers as s
from mlaccounts.api.exceptions import envelope
from mlaccounts.api.schema import (
    INVITATION_ID,
    INVITATION_TOKEN,
    MEMBER_ID,
    PAGE,
    WORKSPACE_ID,
    api_operation,
    envelope_of,
)
from mlaccounts.api.throttles import invite_wait

WORKSPACES = "workspaces"
PAGE_SIZE = 50
MAX_PAGE = 100_000  # beyond any real list; keeps OFFSET inside every database's range

WorkspaceResponse = envelope_of("WorkspaceResponse", s.WorkspaceSerializer())
WorkspaceListResponse = envelope_of("WorkspaceListResponse", s.WorkspaceListSerializer())
MemberResponse = envelope_of("MemberResponse", s.MemberSerializer())
MemberListResponse = envelope_of("MemberListResponse", s.MemberListSerializer())
InvitationCreatedResponse = envelope_of("InvitationCreatedResponse", s.InvitationCreatedSerializer())
InvitationListResponse = envelope_of("InvitationListResponse", s.InvitationListSerializer())
InvitationAcceptedResponse = envelope_of("InvitationAcceptedResponse", s.InvitationAcceptedSerializer())
MessageResponse = envelope_of("MessageResponse")


def page_of(request, items) -> tuple[list, int]:
    """One page (50) of `items` (a queryset or a list) and the total, by `?page=` (from 1)."""
    raw = request.query_params.get("page", "1")
    try:
        page = int(raw)
    except (TypeError, ValueError):
        raise exceptions.ValidationError({"page": [_("Must be a whole number.")]}) from None
    page = min(max(page, 1), MAX_PAGE)
    total = items.count() if hasattr(items, "count") and not isinstance(items, list) else len(items)
    start = (page - 1) * PAGE_SIZE
    return list(items[start : start + PAGE_SIZE]), total


def _workspace_data(workspace, user) -> dict:
    return {
        "id": workspace.pk,
        "name": workspace.name,
        "role": workspace.role,
        "isPersonal": workspace.personal_for_id == user.pk,
        "created_at": workspace.created_at,
    }


class WorkspaceView(APIView):
    def get_workspace(self, workspace_id, need: Can = Can.VIEW):
        return selectors.workspace_get_for_user(user=self.request.user, workspace_id=workspace_id, need=need)


class WorkspaceListView(APIView):
    @api_operation(
        operation_id="listWorkspaces",
        summary="Your workspaces, personal first then by name",
        tag=WORKSPACES,
        ok={200: WorkspaceListResponse},
        errors={400: ("VALIDATION_ERROR",)},
        parameters=[PAGE],
    )
    def get(self, request):
        services.workspace_personal(user=request.user)  # every user has one, however made
        items, total = page_of(request, selectors.workspace_list_for_user(user=request.user))
        data = {"workspaces": [_workspace_data(w, request.user) for w in items], "total": total}
        return envelope(s.WorkspaceListSerializer(data).data)

    @api_operation(
        operation_id="createWorkspace",
        summary="Create a workspace; you are its owner",
        tag=WORKSPACES,
        request=s.WorkspaceInputSerializer,
        ok={201: WorkspaceResponse},
    )
    def post(self, request):
        serializer = s.WorkspaceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = services.workspace_create(user=request.user, name=serializer.validated_data["name"])
        workspace = selectors.workspace_get_for_user(user=request.user, workspace_id=workspace.pk)
        return envelope(s.WorkspaceSerializer(_workspace_data(workspace, request.user)).data, status_code=201)


class WorkspaceDetailView(WorkspaceView):
    @api_operation(
        operation_id="getWorkspace",
        summary="One workspace",
        tag=WORKSPACES,
        ok={200: WorkspaceResponse},
        errors={404: ("NOT_FOUND",)},
        parameters=[WORKSPACE_ID],
    )
    def get(self, request, id):
        return envelope(s.WorkspaceSerializer(_workspace_data(self.get_workspace(id), request.user)).data)

    @api_operation(
        operation_id="renameWorkspace",
        summary="Rename a workspace (owners)",
        tag=WORKSPACES,
        request=s.WorkspaceInputSerializer,
        ok={200: WorkspaceResponse},
        errors={404: ("NOT_FOUND",)},
        parameters=[WORKSPACE_ID],
    )
    def patch(self, request, id):
        workspace = self.get_workspace(id, Can.ADMIN)
        serializer = s.WorkspaceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = services.workspace_rename(workspace=workspace, name=serializer.validated_data["name"])
        return envelope(s.WorkspaceSerializer(_workspace_data(workspace, request.user)).data)

    @api_operation(
        operation_id="deleteWorkspace",
        summary="Delete a workspace with its accounts (owners; not a personal workspace)",
        tag=WORKSPACES,
        ok={200: MessageResponse},
        errors={404: ("NOT_FOUND",)},
        parameters=[WORKSPACE_ID],
    )
    def delete(self, request, id):
        services.workspace_delete(workspace=self.get_workspace(id, Can.ADMIN))
        return envelope(message=_("Workspace deleted."), with_data=False)


class MemberListView(WorkspaceView):
    @api_operation(
        operation_id="listWorkspaceMembers",
        summary="The workspace's members, oldest first (owners)",
        tag=WORKSPACES,
        ok={200: MemberListResponse},
        errors={400: ("VALIDATION_ERROR",), 404: ("NOT_FOUND",)},
        parameters=[WORKSPACE_ID, PAGE],
    )
    def get(self, request, id):
        workspace = self.get_workspace(id, Can.ADMIN)
        items, total = page_of(request, selectors.workspace_members(workspace=workspace))
        return envelope(s.MemberListSerializer({"members": items, "total": total}).data)


class MemberDetailView(WorkspaceView):
    @api_operation(
        operation_id="updateWorkspaceMember",
        summary="Change a member's role and account scope (owners)",
        description="Takes effect on the member's next request, for sessions and bearer tokens alike. "
        "`accountIds` null: every account. A workspace keeps at least one owner (403 otherwise).",
        tag=WORKSPACES,
        request=s.MemberUpdateSerializer,
        ok={200: MemberResponse},
        errors={404: ("NOT_FOUND",)},
        parameters=[WORKSPACE_ID, MEMBER_ID],
    )
    def patch(self, request, id, userId):
        workspace = self.get_workspace(id, Can.ADMIN)
        membership = selectors.workspace_member_get(workspace=workspace, user_id=userId)
        serializer = s.MemberUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.membership_update(membership=membership, **serializer.validated_data)
        member = next(m for m in selectors.workspace_members(workspace=workspace) if m.pk == membership.pk)
        return envelope(s.MemberSerializer(member).data)

    @api_operation(
        operation_id="removeWorkspaceMember",
        summary="Remove a member (owners), or leave (yourself)",
        tag=WORKSPACES,
        ok={200: MessageResponse},
        errors={404: ("NOT_FOUND",)},
        parameters=[WORKSPACE_ID, MEMBER_ID],
    )
    def delete(self, request, id, userId):
        leaving = str(userId) == str(request.user.pk)
        workspace = self.get_workspace(id, Can.VIEW if leaving else Can.ADMIN)
        membership = selectors.workspace_member_get(workspace=workspace, user_id=userId)
        services.membership_remove(membership=membership)
        return envelope(message=_("Member removed."), with_data=False)


class InvitationListView(WorkspaceView):
    @api_operation(
        operation_id="listWorkspaceInvitations",
        summary="Pending invitations, newest first (owners)",
        tag=WORKSPACES,
        ok={200: InvitationListResponse},
        errors={400: ("VALIDATION_ERROR",), 404: ("NOT_FOUND",)},
        parameters=[WORKSPACE_ID, PAGE],
    )
    def get(self, request, id):
        workspace = self.get_workspace(id, Can.ADMIN)
        items, total = page_of(request, selectors.invitation_pending(workspace=workspace, now=timezone.now()))
        return envelope(s.InvitationListSerializer({"invitations": items, "total": total}).data)

    @api_operation(
        operation_id="inviteToWorkspace",
        summary="Invite someone by email (owners)",
        description="Emails a single-use link, valid for 7 days, for that address only. A pending "
        "invitation for the same address is replaced. `acceptUrl` is returned only here.",
        tag=WORKSPACES,
        request=s.InvitationInputSerializer,
        ok={201: InvitationCreatedResponse},
        errors={404: ("NOT_FOUND",), 429: ("RATE_LIMITED",)},
        parameters=[WORKSPACE_ID],
    )
    def post(self, request, id):
        workspace = self.get_workspace(id, Can.ADMIN)
        serializer = s.InvitationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wait = invite_wait(request)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)
        invited = invitations.invite(request._request, workspace=workspace, **serializer.validated_data)
        invitation = invited.invitation
        invitation.acceptUrl = invited.accept_url
        invitation.emailSent = invited.sent
        return envelope(s.InvitationCreatedSerializer(invitation).data, status_code=201)


class InvitationDetailView(WorkspaceView):
    @api_operation(
        operation_id="revokeWorkspaceInvitation",
        summary="Revoke a pending invitation (owners)",
        tag=WORKSPACES,
        ok={200: MessageResponse},
        errors={404: ("NOT_FOUND",)},
        parameters=[WORKSPACE_ID, INVITATION_ID],
    )
    def delete(self, request, id, invitationId):
        workspace = self.get_workspace(id, Can.ADMIN)
        invitation = selectors.invitation_get(workspace=workspace, invitation_id=invitationId)
        services.invitation_revoke(invitation=invitation)
        return envelope(message=_("Invitation revoked."), with_data=False)


class InvitationAcceptView(APIView):
    @api_operation(
        operation_id="acceptInvitation",
        summary="Accept an invitation, signed in with the invited address",
        tag=WORKSPACES,
        ok={200: InvitationAcceptedResponse},
        errors={400: ("INVITATION_INVALID",), 404: ("NOT_FOUND",)},
        parameters=[INVITATION_TOKEN],
    )
    def post(self, request, token):
        membership = services.invitation_accept(token=token, user=request.user)
        data = {"workspaceId": membership.workspace_id, "role": membership.role}
        return envelope(s.InvitationAcceptedSerializer(data).data)
