"""The domain's errors. The API maps each `code` to a status; the dashboard shows `message`."""

from django.http import Http404
from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    code = "DOMAIN_ERROR"
    default_message = _("The request could not be completed.")

    def __init__(self, message=None):
        self.message = message or self.default_message
        super().__init__(str(self.message))


class AccountNotFound(DomainError, Http404):
    """Raised for ids that do not exist, are malformed, or belong to somebody else alike."""

    code = "NOT_FOUND"
    default_message = _("Mercado Livre account not found.")


class SyncJobNotFound(DomainError, Http404):
    """A sync job that does not exist, is malformed, or was started by somebody else."""

    code = "NOT_FOUND"
    default_message = _("Sync job not found.")


class AccountValidationError(DomainError):
    """Input that a service refuses; `errors` maps each field to its messages."""

    code = "VALIDATION_ERROR"
    default_message = _("Some fields are invalid.")

    def __init__(self, errors: dict[str, list[str]], message=None):
        self.errors = errors
        super().__init__(message)


class AccountExists(DomainError):
    code = "ACCOUNT_EXISTS"
    default_message = _("This Mercado Livre account is already connected.")


class SyncInProgress(DomainError):
    code = "SYNC_IN_PROGRESS"
    default_message = _("Another sync of this account is running; try again in a moment.")


class NoRefreshToken(DomainError):
    code = "NO_REFRESH_TOKEN"
    default_message = _("This account has no refresh token; reconnect it to Mercado Livre.")


class OAuthStateInvalid(DomainError):
    code = "OAUTH_STATE_INVALID"
    default_message = _(
        "This connection attempt is no longer valid (expired, already used or started elsewhere). "
        "Please start again."
    )


class OAuthDenied(DomainError):
    code = "OAUTH_DENIED"
    default_message = _("The connection was not authorised at Mercado Livre. Nothing was changed.")


class EmailExists(DomainError):
    code = "EMAIL_EXISTS"
    default_message = _("A user with this email address already exists.")
