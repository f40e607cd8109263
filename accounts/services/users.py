"""Users: registration through the REST API, by the dashboard sign-up's rules."""

from __future__ import annotations

from allauth.account.adapter import get_adapter as get_allauth_adapter
from allauth.account.models import EmailAddress
from allauth.account.utils import filter_users_by_email
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from accounts.errors import AccountValidationError, EmailExists
from accounts.models import AuditAction, User, Workspace
from accounts.services.audit import audit_record
from accounts.services.validation import check_text
from accounts.services.workspaces import workspace_personal

MAX_NAME_LENGTH = 150  # AbstractUser.first_name / last_name
MAX_PASSWORD_LENGTH = 1024  # bounds the hashing and similarity checks an anonymous caller can cause
# Django's MinimumLengthValidator default (settings.AUTH_PASSWORD_VALIDATORS), for the schema.
MIN_PASSWORD_LENGTH = 8


@transaction.atomic
def user_register(*, email, password, first_name="", last_name="") -> User:
    """Create a user by the dashboard sign-up's rules (django-allauth), for the REST API.

    The email must be valid and not in use in its canonical form (accounts.emails: a
    look-alike spelling of a registered address is that address), against users and
    allauth's email addresses alike; the password must pass allauth's and Django's
    validators (similarity to the email and names included). Like allauth's sign-up, the
    address is recorded as the user's primary, unverified EmailAddress. Raises
    AccountValidationError (errors keyed by field name) or EmailExists.
    """
    adapter = get_allauth_adapter()
    errors: dict[str, list[str]] = {}
    check_text(errors, "email", email, max_length=254)
    if "email" not in errors:
        try:
            # The canonical form (accounts.emails): what the address is stored and found by.
            email = adapter.clean_email(email)
            validate_email(email)
        except ValidationError as exc:
            errors.setdefault("email", []).extend(exc.messages)
    check_text(errors, "first_name", first_name, required=False, max_length=MAX_NAME_LENGTH)
    check_text(errors, "last_name", last_name, required=False, max_length=MAX_NAME_LENGTH)
    first_name = first_name.strip() if isinstance(first_name, str) else ""
    last_name = last_name.strip() if isinstance(last_name, str) else ""
    if not isinstance(password, str) or not password:
        errors.setdefault("password", []).append(_("This field is required."))
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors.setdefault("password", []).append(
            _("Ensure this value has at most %(max)d characters.") % {"max": MAX_PASSWORD_LENGTH}
        )
    else:
        candidate = User(
            email=email if "email" not in errors else "", first_name=first_name, last_name=last_name
        )
        try:
            adapter.clean_password(password, user=candidate)
        except ValidationError as exc:
            errors.setdefault("password", []).extend(exc.messages)
    if errors:
        raise AccountValidationError(errors)

    if filter_users_by_email(email):
        raise EmailExists()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, first_name=first_name, last_name=last_name)
            EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=False)
            workspace_personal(user=user)
    except IntegrityError:
        # Another sign-up took the address between our check and the insert.
        raise EmailExists() from None
    return user


def user_revoke_api_tokens(*, user) -> None:
    """Revoke every API bearer token issued to `user` so far (API or dashboard logout).

    Tokens carry the user's api_token_version (mlaccounts.api.authentication); a
    conditional UPDATE bumps it, so two logouts at once both count and nothing else in
    the row is rewritten.
    """
    User.objects.filter(pk=user.pk).update(api_token_version=F("api_token_version") + 1)
    user.refresh_from_db(fields=["api_token_version"])


def user_signed_in(*, user, via: str) -> None:
    """Record a sign-in (`via`: "dashboard", "admin" or "api") in the audit log.

    A sign-in is not about one workspace: the entry goes to the user's personal workspace,
    where they (its owner) see their own sign-ins with the address and browser; the owners
    of the other workspaces they belong to do not see where they signed in from. A user
    without one yet (made in the admin, never on the dashboard) gets an entry of no
    workspace, which only the admin shows.
    """
    personal = Workspace.objects.filter(personal_for=user).first()
    audit_record(action=AuditAction.SIGN_IN, workspace=personal, changes={"via": via}, actor=user)
