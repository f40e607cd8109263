"""The domain's errors. The API maps each `code` to a status; the dashboard shows `message`."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from accounts.mercadolivre.errors import MLRateLimited


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


class WorkspaceNotFound(DomainError, Http404):
    """A workspace the caller is not a member of, or that does not exist, or a malformed id."""

    code = "NOT_FOUND"
    default_message = _("Workspace not found.")


class MemberNotFound(DomainError, Http404):
    code = "NOT_FOUND"
    default_message = _("Member not found.")


class InvitationNotFound(DomainError, Http404):
    code = "NOT_FOUND"
    default_message = _("Invitation not found.")


class Forbidden(DomainError, PermissionDenied):
    """The caller can see the account or workspace, but their role does not allow this."""

    code = "FORBIDDEN"
    default_message = _("Your role in this workspace does not allow this.")


class InvitationInvalid(DomainError):
    """Used, expired, revoked, unknown, or meant for another address: all alike."""

    code = "INVITATION_INVALID"
    default_message = _(
        "This invitation is no longer valid (used, expired or revoked) or was sent to another "
        "email address. Ask for a new one."
    )


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


class AccountConnectedElsewhere(DomainError):
    """The seller is already connected in a workspace the caller is not in (one grant per seller)."""

    code = "ACCOUNT_CONNECTED_ELSEWHERE"
    default_message = _(
        "This Mercado Livre seller is already connected in another workspace of this installation. "
        "Ask an owner of that workspace for an invitation."
    )

    def __init__(self, message=None, *, workspace_name: str = ""):
        self.workspace_name = workspace_name
        if message is None and workspace_name:
            message = _(
                "This Mercado Livre seller is managed in the workspace “%(workspace)s” of this "
                "installation. Ask its owner for an invitation."
            ) % {"workspace": workspace_name}
        super().__init__(message)


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


class QuestionNotFound(DomainError, Http404):
    """A question of an account the caller cannot see, one not in the mirror, or a malformed id."""

    code = "NOT_FOUND"
    default_message = _("Question not found.")


class SavedReplyNotFound(DomainError, Http404):
    code = "NOT_FOUND"
    default_message = _("Saved reply not found.")


class QuestionNotOpen(DomainError):
    """Mercado Livre refused an answer: the question is no longer open (`status`, when known)."""

    code = "QUESTION_NOT_OPEN"
    default_message = _("This question is no longer open at Mercado Livre.")

    def __init__(self, message=None, *, status: str = ""):
        self.status = status
        super().__init__(message)


class DeskUnavailable(DomainError):
    """Mercado Livre failed, timed out, or its request budget ran out while answering."""

    code = "ML_UNAVAILABLE"
    default_message = _(
        "Mercado Livre did not confirm the answer (it failed or did not answer in time). The question "
        "stays in the queue; if the answer did arrive, the next sync takes it out."
    )

    def __init__(self, message=None, *, retry_after: float | None = None, code: str | None = None):
        self.retry_after = retry_after
        if code:
            self.code = code
        super().__init__(message)

    @classmethod
    def from_ml(cls, error) -> "DeskUnavailable":
        if isinstance(error, MLRateLimited):
            return cls(
                _("Mercado Livre's rate limit was reached; the answer was not sent. Try again in a moment."),
                retry_after=error.retry_after,
                code="ML_RATE_LIMITED",
            )
        return cls()


class AccountNeedsReconnect(DomainError):
    """Mercado Livre no longer accepts the account's authorization: reconnect it first."""

    code = "TOKEN_EXPIRED"
    default_message = _(
        "Mercado Livre no longer accepts this account's authorization, so nothing was sent. "
        "Reconnect the account, then answer again."
    )


class ReconnectLinkInvalid(DomainError):
    """A reconnect link that cannot restore its account; `reason` says why (UNKNOWN, USED, EXPIRED,
    REMOVED: the pages answer 404 for an unknown one, 410 for the others)."""

    code = "RECONNECT_LINK_INVALID"
    UNKNOWN, USED, EXPIRED, REMOVED = "unknown", "used", "expired", "removed"
    MESSAGES = {
        UNKNOWN: _(
            "This reconnect link is not valid: it may be incomplete, or the store was removed from "
            "ML Accounts. Ask the person who sent it for a new link."
        ),
        USED: _(
            "This reconnect link was already used, and the store was connected again with it. If it "
            "needs reconnecting again, ask the person who sent the link for a new one."
        ),
        EXPIRED: _("This reconnect link has expired. Ask the person who sent it for a new one."),
        REMOVED: _(
            "The store of this reconnect link was removed from ML Accounts meanwhile, so nothing was "
            "changed. Ask the person who sent the link what to do."
        ),
    }
    default_message = MESSAGES[UNKNOWN]

    def __init__(self, reason: str, message=None):
        self.reason = reason
        super().__init__(message or self.MESSAGES[reason])


class ReconnectWrongSeller(DomainError):
    """Mercado Livre's authorization was for another seller than the reconnect link's store."""

    code = "RECONNECT_WRONG_SELLER"
    default_message = _("You authorized as another Mercado Livre seller. Nothing was changed.")

    def __init__(self, message=None, *, authorized: str = "", expected: str = ""):
        self.authorized = authorized
        self.expected = expected
        if message is None and authorized and expected:
            message = _(
                "You authorized as %(authorized)s; this link is for %(expected)s. Nothing was changed. "
                "Sign out of Mercado Livre and try again with the login of %(expected)s."
            ) % {"authorized": authorized, "expected": expected}
        super().__init__(message)
