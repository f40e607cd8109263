"""Dashboard pages of the workspaces: switch, create, members and invitations, accept.

Every view goes through the access helper (accounts.selectors.workspace_get_for_user): a
workspace the user is not a member of is a 404, an action their role does not allow a
403. Members, invitations, renaming and deleting are the owners' (Can.ADMIN).
"""

import math
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services
from accounts.errors import AccountValidationError, DomainError, InvitationInvalid, InvitationNotFound
from accounts.roles import Can
from mlaccounts import invitations
from mlaccounts.api.throttles import invite_wait
from mlaccounts.forms import MemberAccessForm, WorkspaceForm, add_service_errors
from mlaccounts.views.accounts import dashboard_login_required


def _workspace(request, workspace_id, need: Can = Can.VIEW):
    return selectors.workspace_get_for_user(user=request.user, workspace_id=workspace_id, need=need)


def _members_url(workspace) -> str:
    return reverse("dashboard:members", args=[workspace.pk])


@require_POST
@dashboard_login_required
def workspace_switch(request):
    """Show another of the user's workspaces on the dashboard (remembered on the user)."""
    workspace = _workspace(request, request.POST.get("workspace", ""))
    services.workspace_switch(user=request.user, workspace=workspace)
    return redirect("dashboard:overview")


@require_http_methods(["GET", "POST"])
@dashboard_login_required
def workspace_new(request):
    """Create a workspace; its creator is its owner, and the dashboard switches to it."""
    form = WorkspaceForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.workspace_create(user=request.user, name=form.cleaned_data["name"])
        except AccountValidationError as error:
            add_service_errors(form, error, {})
        else:
            services.workspace_switch(user=request.user, workspace=workspace)
            messages.success(request, _("The workspace %(name)s was created.") % {"name": workspace.name})
            return redirect(_members_url(workspace))
    status = 400 if form.is_bound else 200
    return render(request, "workspaces/new.html", {"form": form}, status=status)


MEMBERS_PER_PAGE = 25
INVITATIONS_PER_PAGE = 25


def _members_context(request, workspace, *, invite_form=None, rename_form=None) -> dict:
    """The members page: one page of members (`?page=`) and of pending invitations
    (`?invitations=`), whatever their number, in a fixed number of queries."""
    accounts = list(selectors.workspace_accounts_for_scope(workspace=workspace))
    member_page = Paginator(selectors.workspace_member_list(workspace=workspace), MEMBERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    members = selectors.with_scopes(list(member_page.object_list))
    invitation_page = Paginator(
        selectors.invitation_pending(workspace=workspace, now=timezone.now()), INVITATIONS_PER_PAGE
    ).get_page(request.GET.get("invitations"))
    names = {account.pk: account.account_name for account in accounts}
    owners = selectors.workspace_owner_count(workspace=workspace)
    pages = {"page": member_page.number, "invitations": invitation_page.number}
    for member in members:
        member.form = MemberAccessForm(
            workspace_accounts=accounts,
            prefix=f"m{member.user_id}",
            initial={
                "role": member.role,
                "scope": "chosen" if member.scoped else "all",
                "accounts": [str(pk) for pk in member.account_ids or []],
            },
        )
        member.account_names = [names[pk] for pk in member.account_ids or [] if pk in names]
        member.is_self = member.user_id == request.user.pk
        member.is_personal_owner = workspace.personal_for_id == member.user_id
        # The last owner cannot leave nor be removed (the services refuse): offer neither.
        member.is_last_owner = member.role == "owner" and owners == 1
    return {
        "workspace": workspace,
        "members": members,
        "member_page": member_page,
        "member_links": _page_links(member_page, "page", pages),
        "invitations": list(invitation_page.object_list),
        "invitation_page": invitation_page,
        "invitation_links": _page_links(invitation_page, "invitations", pages),
        "invite_form": invite_form or MemberAccessForm(workspace_accounts=accounts, with_email=True),
        "rename_form": rename_form or WorkspaceForm(initial={"name": workspace.name}),
        "account_count": len(accounts),
    }


def _page_links(page, name: str, pages: dict) -> dict:
    """The previous and next links of one of the members page's lists, keeping the other's page."""

    def link(number):
        return "?" + urlencode({**pages, name: number})

    return {
        "prev": link(page.previous_page_number()) if page.has_previous() else "",
        "next": link(page.next_page_number()) if page.has_next() else "",
    }


@require_GET
@dashboard_login_required
def members(request, workspace_id):
    """The members page: who has which role and scope, pending invitations, invite."""
    workspace = _workspace(request, workspace_id, Can.ADMIN)
    return render(request, "workspaces/members.html", _members_context(request, workspace))


@require_POST
@dashboard_login_required
def invite(request, workspace_id):
    workspace = _workspace(request, workspace_id, Can.ADMIN)
    accounts = list(selectors.workspace_accounts_for_scope(workspace=workspace))
    form = MemberAccessForm(request.POST, workspace_accounts=accounts, with_email=True)
    if form.is_valid():
        # Each invitation emails someone: the API's per-user `invite` limit, shared with it.
        wait = invite_wait(request)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            form.add_error(
                None,
                ngettext(
                    "Too many invitations sent. Nothing was sent; try again in %(count)d second.",
                    "Too many invitations sent. Nothing was sent; try again in %(count)d seconds.",
                    seconds,
                )
                % {"count": seconds},
            )
            context = _members_context(request, workspace, invite_form=form)
            response = render(request, "workspaces/members.html", context, status=429)
            response["Retry-After"] = str(seconds)
            return response
        try:
            invited = invitations.invite(
                request,
                workspace=workspace,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                account_ids=form.account_ids(),
            )
        except AccountValidationError as error:
            add_service_errors(form, error, MemberAccessForm.SERVICE_FIELDS)
        else:
            email = invited.invitation.email
            if invited.sent:
                messages.success(request, _("Invitation sent to %(email)s.") % {"email": email})
            else:
                messages.warning(
                    request,
                    _(
                        "The invitation for %(email)s was created, but the email could not be sent. "
                        "Send them this link yourself: %(url)s"
                    )
                    % {"email": email, "url": invited.accept_url},
                )
            return redirect(_members_url(workspace))
    context = _members_context(request, workspace, invite_form=form)
    return render(request, "workspaces/members.html", context, status=400)


@require_POST
@dashboard_login_required
def member_update(request, workspace_id, user_id):
    """Change a member's role and account scope; it takes effect on their next request."""
    workspace = _workspace(request, workspace_id, Can.ADMIN)
    membership = selectors.workspace_member_get(workspace=workspace, user_id=user_id)
    accounts = list(selectors.workspace_accounts_for_scope(workspace=workspace))
    form = MemberAccessForm(request.POST, workspace_accounts=accounts, prefix=f"m{membership.user_id}")
    if not form.is_valid():
        messages.error(request, _("Choose a role, and the accounts when access is limited."))
        return redirect(_members_url(workspace))
    try:
        services.membership_update(
            membership=membership, role=form.cleaned_data["role"], account_ids=form.account_ids()
        )
    except AccountValidationError as error:
        for field_messages in error.errors.values():
            for message in field_messages:
                messages.error(request, message)
    except DomainError as error:
        messages.error(request, str(error.message))
    else:
        messages.success(
            request, _("The access of %(email)s was changed.") % {"email": membership.user.email}
        )
    return redirect(_members_url(workspace))


@require_POST
@dashboard_login_required
def member_remove(request, workspace_id, user_id):
    """Remove a member (an owner), or leave the workspace (any member, for themselves)."""
    workspace = _workspace(request, workspace_id)
    leaving = str(user_id) == str(request.user.pk)
    if not leaving:
        workspace = _workspace(request, workspace_id, Can.ADMIN)
    membership = selectors.workspace_member_get(workspace=workspace, user_id=user_id)
    try:
        services.membership_remove(membership=membership)
    except DomainError as error:
        messages.error(request, str(error.message))
        return redirect(_members_url(workspace) if not leaving else "dashboard:overview")
    if leaving:
        messages.success(request, _("You left the workspace %(name)s.") % {"name": workspace.name})
        return redirect("dashboard:overview")
    messages.success(
        request, _("%(email)s was removed from the workspace.") % {"email": membership.user.email}
    )
    return redirect(_members_url(workspace))


@require_POST
@dashboard_login_required
def invitation_revoke(request, workspace_id, invitation_id):
    workspace = _workspace(request, workspace_id, Can.ADMIN)
    invitation = selectors.invitation_get(workspace=workspace, invitation_id=invitation_id)
    services.invitation_revoke(invitation=invitation)
    messages.success(request, _("The invitation for %(email)s was revoked.") % {"email": invitation.email})
    return redirect(_members_url(workspace))


@require_POST
@dashboard_login_required
def workspace_rename(request, workspace_id):
    workspace = _workspace(request, workspace_id, Can.ADMIN)
    form = WorkspaceForm(request.POST)
    if form.is_valid():
        try:
            services.workspace_rename(workspace=workspace, name=form.cleaned_data["name"])
        except AccountValidationError as error:
            add_service_errors(form, error, {})
        else:
            messages.success(request, _("The workspace was renamed."))
            return redirect(_members_url(workspace))
    context = _members_context(request, workspace, rename_form=form)
    return render(request, "workspaces/members.html", context, status=400)


@require_http_methods(["GET", "POST"])
@dashboard_login_required
def workspace_delete(request, workspace_id):
    """GET: a confirmation naming how many accounts go with it. POST: delete."""
    workspace = _workspace(request, workspace_id, Can.ADMIN)
    if workspace.personal_for_id is not None:
        messages.error(request, _("A personal workspace cannot be deleted."))
        return redirect(_members_url(workspace))
    if request.method == "POST":
        removed = services.workspace_delete(workspace=workspace)
        messages.success(
            request,
            ngettext(
                "The workspace %(name)s and its %(count)d account were deleted.",
                "The workspace %(name)s and its %(count)d accounts were deleted.",
                removed,
            )
            % {"name": workspace.name, "count": removed},
        )
        return redirect("dashboard:overview")
    context = {
        "workspace": workspace,
        "account_count": selectors.workspace_account_count(workspace=workspace),
    }
    return render(request, "workspaces/delete.html", context)


@require_http_methods(["GET", "POST"])
def invitation(request, token):
    """An invitation's link. Signed out: sign in or sign up (back here after). Signed in with
    the invited address: accept (POST). Signed in with another: say so, change nothing."""
    try:
        pending = services.invitation_check(token=token)
    except InvitationNotFound:
        error = InvitationInvalid.default_message
        return render(request, "workspaces/invitation.html", {"error": error}, status=404)
    except InvitationInvalid as error:
        return render(request, "workspaces/invitation.html", {"error": error.message}, status=400)
    context = {"invitation": pending, "token": token, "here": request.get_full_path()}
    if not request.user.is_authenticated:
        return render(request, "workspaces/invitation.html", context)
    if request.user.email != pending.email:
        context["wrong_address"] = True
        return render(
            request, "workspaces/invitation.html", context, status=400 if request.method == "POST" else 200
        )
    if request.method == "POST":
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except InvitationInvalid as error:
            return render(request, "workspaces/invitation.html", {"error": error.message}, status=400)
        messages.success(
            request,
            _("You joined the workspace %(name)s as %(role)s.")
            % {"name": membership.workspace.name, "role": membership.get_role_display()},
        )
        return redirect("dashboard:overview")
    return render(request, "workspaces/invitation.html", context)


@require_POST
def invitation_switch_user(request, token):
    """Signed in with another address: sign out and come back to the invitation's page."""
    logout(request)
    return HttpResponseRedirect(
        f"{reverse('account_login')}?next={reverse('dashboard:invitation', args=[token])}"
    )
