"""Inviting someone to a workspace, for the dashboard and the API alike: one way, one email.

The invitation's link is absolute (the email leaves the site), built from the request,
and its last path segment is the token. The email goes through Django's email backend
(the console under `make run`, SMTP from EMAIL_URL in production), in the inviter's
language. A failed send is logged and reported, never a 500: the link is shown to the
inviter, who can pass it on another way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from accounts import services
from accounts.models import Invitation, Workspace

logger = logging.getLogger(__name__)


@dataclass
class Invited:
    invitation: Invitation
    accept_url: str
    sent: bool


def accept_url(request, token: str) -> str:
    return request.build_absolute_uri(reverse("dashboard:invitation", args=[token]))


def invite(request, *, workspace: Workspace, email, role, account_ids=None) -> Invited:
    """Create the invitation (accounts.services) and email its link to the invited address."""
    invitation, token = services.invitation_create(
        workspace=workspace, invited_by=request.user, email=email, role=role, account_ids=account_ids
    )
    url = accept_url(request, token)
    return Invited(invitation=invitation, accept_url=url, sent=_send(invitation, url, request.user))


def _send(invitation: Invitation, url: str, inviter) -> bool:
    context = {
        "invitation": invitation,
        "workspace": invitation.workspace,
        "inviter": inviter.get_full_name() or inviter.email,
        "role": invitation.get_role_display(),
        "accept_url": url,
        "days": Invitation.LIFETIME_DAYS,
        "email": invitation.email,
    }
    with translation.override(translation.get_language()):
        subject = render_to_string("emails/invitation_subject.txt", context).strip()
        body = render_to_string("emails/invitation_body.txt", context)
    try:
        send_mail(
            settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + subject,
            body,
            settings.DEFAULT_FROM_EMAIL,
            [invitation.email],
        )
    except OSError as error:  # SMTP refused, timed out, unreachable (smtplib errors are OSErrors)
        logger.warning(
            "invitation email not sent",
            extra={"event": "invitation_email_failed", "invitation": str(invitation.pk), "error": str(error)},
        )
        return False
    return True
