"""The REST API's views (api-contract.md): thin, like the dashboard's.

Each view authenticates (DRF), fetches through accounts.selectors (404 for anybody
else's account), validates its input with a serializer, calls one service (or the sync
engine) and answers through an output serializer inside the envelope. Failures are
raised, never answered here: mlaccounts.api.exceptions turns each into the envelope.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from accounts import selectors, services, tokens
from accounts.mercadolivre import deadline
from accounts.mercadolivre.errors import MLError, MLInvalidGrant, MLRateLimited
from accounts.roles import Can
from mlaccounts.api import serializers as s
from mlaccounts.api import syncing
from mlaccounts.api.authentication import access_token_for
from mlaccounts.api.errors import (
    InvalidCredentials,
    MissingCredentials,
    MLRateLimitedError,
    MLUnavailableError,
    TokenRefreshFailed,
)
from mlaccounts.api.exceptions import envelope, field_errors
from mlaccounts.api.schema import JOB_ID, PREFER_ASYNC, api_operation, envelope_of
from mlaccounts.api.throttles import (
    LoginFailureThrottle,
    LoginIPThrottle,
    MLActionThrottle,
    RegisterEmailThrottle,
    RegisterIPThrottle,
    UserThrottle,
)
from sync import ondemand

AUTH = "auth"
ACCOUNTS = "ml-accounts"

AuthResponse = envelope_of("AuthResponse", s.AuthResultSerializer())
UserResponse = envelope_of("UserResponse", s.UserSerializer())
AccountResponse = envelope_of("MLAccountResponse", s.MLAccountSerializer())
AccountListResponse = envelope_of("MLAccountListResponse", s.MLAccountListSerializer())
MessageResponse = envelope_of("MessageResponse")
SyncResponse = envelope_of("SyncResponse", s.SyncResultSerializer())
SyncAllResponse = envelope_of("SyncAllResponse", s.SyncAllSerializer())
SyncJobResponse = envelope_of("SyncJobResponse", s.SyncJobSerializer())
RefreshResponse = envelope_of("RefreshTokenResponse", s.RefreshResultSerializer())
TokenInfoResponse = envelope_of("TokenInfoResponse", s.TokenStatusSerializer())


def _account_answer(account, *, status_code=200, message=None):
    return envelope(s.MLAccountSerializer(account).data, status_code=status_code, message=message)


# --- auth -----------------------------------------------------------------------------------


class RegisterView(APIView):
    """Create a user (the dashboard sign-up's rules) and return a bearer token."""

    # No authentication: a stale token or session must not stand in the way of signing up.
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (RegisterIPThrottle, RegisterEmailThrottle)

    @api_operation(
        operation_id="register",
        summary="Create a user and get a bearer token",
        tag=AUTH,
        request=s.RegisterSerializer,
        ok={201: AuthResponse},
        errors={409: ("EMAIL_EXISTS",)},
        authenticated=False,
    )
    def post(self, request):
        serializer = s.RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        result = s.AuthResultSerializer({"user": user, "token": access_token_for(user)}).data
        return envelope(result, status_code=201)


class LoginView(APIView):
    """Exchange an email and password for a bearer token."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (LoginIPThrottle, LoginFailureThrottle)

    @api_operation(
        operation_id="login",
        summary="Get a bearer token",
        tag=AUTH,
        request=s.LoginSerializer,
        ok={200: AuthResponse},
        errors={400: ("MISSING_CREDENTIALS",), 401: ("INVALID_CREDENTIALS",)},
        authenticated=False,
        validation=False,
    )
    def post(self, request):
        serializer = s.LoginSerializer(data=request.data)
        if not serializer.is_valid():
            raise MissingCredentials(errors=field_errors(serializer.errors))
        user = authenticate(
            request._request,
            username=serializer.validated_data["email"],
            password=serializer.validated_data["password"],
        )
        if user is None:
            for throttle in self.get_throttles():
                if isinstance(throttle, LoginFailureThrottle):
                    throttle.record_failure(request, self)
            raise InvalidCredentials()
        update_last_login(None, user)
        services.user_signed_in(user=user, via="api")
        result = s.AuthResultSerializer({"user": user, "token": access_token_for(user)}).data
        return envelope(result)


class LogoutView(APIView):
    """Revoke every bearer token of the caller."""

    @api_operation(
        operation_id="logout",
        summary="Revoke all of your bearer tokens",
        description=(
            "Every bearer token issued to you so far stops working (401), whichever client holds "
            "it; log in again for a new one. Signing out of the dashboard does the same."
        ),
        tag=AUTH,
        ok={200: MessageResponse},
    )
    def post(self, request):
        services.user_revoke_api_tokens(user=request.user)
        return envelope(message=_("Logged out: every bearer token you held is revoked."), with_data=False)


class MeView(APIView):
    """The authenticated user."""

    @api_operation(operation_id="me", summary="The current user", tag=AUTH, ok={200: UserResponse})
    def get(self, request):
        return envelope(s.UserSerializer(request.user).data)


# --- ML accounts ----------------------------------------------------------------------------


class AccountView(APIView):
    """Base of the endpoints on one account: the access helper is the only way to it
    (404 for an account the caller cannot see, 403 when their role does not allow `need`)."""

    def get_account(self, account_id, need: Can = Can.VIEW):
        return selectors.mlaccount_get_for_user(user=self.request.user, account_id=account_id, need=need)


class MLAccountListView(APIView):
    """List the user's accounts, or connect one with a token pair."""

    @api_operation(
        operation_id="listMlAccounts",
        summary="List your accounts, primary first then oldest first",
        description="Every account you can see, in every workspace you are a member of, each with its "
        "`workspaceId` and your `role` there.",
        tag=ACCOUNTS,
        ok={200: AccountListResponse},
    )
    def get(self, request):
        accounts = list(selectors.mlaccount_list_for_user(user=request.user))
        return envelope(s.MLAccountListSerializer({"accounts": accounts, "total": len(accounts)}).data)

    @api_operation(
        operation_id="connectMlAccount",
        summary="Connect an account with a token pair",
        description="Into your personal workspace, or `workspaceId` (manager or owner there). The "
        "workspace's first account becomes primary. The account's first sync is queued at once (the "
        "worker runs it; `lastSync` is set when it is done). A seller already connected in another "
        "workspace of this installation is refused (409 ACCOUNT_CONNECTED_ELSEWHERE) and nothing is "
        "stored: Mercado Livre keeps one grant per seller.",
        tag=ACCOUNTS,
        request=s.ConnectSerializer,
        ok={201: AccountResponse},
        errors={404: ("NOT_FOUND",), 409: ("ACCOUNT_EXISTS", "ACCOUNT_CONNECTED_ELSEWHERE")},
    )
    def post(self, request):
        serializer = s.ConnectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        workspace_id = data.pop("workspace_id", None)
        if workspace_id is None:
            workspace_id = services.workspace_personal(user=request.user).pk
        workspace = selectors.workspace_get_for_user(
            user=request.user, workspace_id=workspace_id, need=Can.MANAGE
        )
        account, _created = services.mlaccount_connect(
            workspace=workspace, connected_by=request.user, reconnect=False, **data
        )
        ondemand.sync_connected(account=account)
        account.role = workspace.role
        return _account_answer(account, status_code=201)


class MLAccountDetailView(AccountView):
    """Read, change or remove one account."""

    @api_operation(
        operation_id="getMlAccount",
        summary="One account",
        tag=ACCOUNTS,
        ok={200: AccountResponse},
        errors={404: ("NOT_FOUND",)},
        account_id=True,
    )
    def get(self, request, id):
        return _account_answer(self.get_account(id))

    def _update(self, request, id):
        account = self.get_account(id, Can.MANAGE)
        serializer = s.UpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = services.mlaccount_update(account=account, **serializer.validated_data)
        return _account_answer(account)

    _update_schema = {
        "summary": "Change an account's settings",
        "description": "Only the fields sent change; unknown fields are ignored. `isPrimary: true` "
        "demotes the previous primary in the same transaction.",
        "tag": ACCOUNTS,
        "request": s.UpdateSerializer,
        "ok": {200: AccountResponse},
        "errors": {404: ("NOT_FOUND",)},
        "account_id": True,
    }

    @api_operation(operation_id="updateMlAccount", **_update_schema)
    def put(self, request, id):
        return self._update(request, id)

    @api_operation(operation_id="patchMlAccount", **_update_schema)
    def patch(self, request, id):
        return self._update(request, id)

    @api_operation(
        operation_id="removeMlAccount",
        summary="Remove an account",
        description="If it was primary, the oldest remaining account becomes primary.",
        tag=ACCOUNTS,
        ok={200: MessageResponse},
        errors={404: ("NOT_FOUND",)},
        account_id=True,
    )
    def delete(self, request, id):
        services.mlaccount_remove(account=self.get_account(id, Can.MANAGE))
        return envelope(message=_("Account removed."), with_data=False)


class MLAccountSyncView(AccountView):
    """Sync one account now, synchronously, under one overall deadline."""

    throttle_classes = (UserThrottle, MLActionThrottle)

    @api_operation(
        operation_id="syncMlAccount",
        summary="Sync an account now",
        description="Synchronous, within SYNC_REQUEST_DEADLINE seconds (20 by default, below the "
        "web server's timeout): when Mercado Livre is too slow the answer is 502 ML_UNAVAILABLE, "
        "or 429 ML_RATE_LIMITED with Retry-After when the request budget or ML's own limit "
        "would take longer.",
        tag=ACCOUNTS,
        ok={200: SyncResponse},
        errors={
            401: ("TOKEN_EXPIRED",),
            404: ("NOT_FOUND",),
            409: ("SYNC_IN_PROGRESS",),
            429: ("ML_RATE_LIMITED",),
            502: ("ML_UNAVAILABLE",),
        },
        account_id=True,
    )
    def post(self, request, id):
        account = self.get_account(id, Can.SYNC)
        with deadline.within(settings.SYNC_REQUEST_DEADLINE):
            result = ondemand.sync_inline(account=account)
        if not result.ok:
            raise syncing.failure(result)
        data = {
            "accountId": account.pk,
            "syncedAt": result.synced_at,
            "data": syncing.cached_data(result.counts, result.synced_at),
        }
        return envelope(s.SyncResultSerializer(data).data)


def _prefers_async(request) -> bool:
    # RFC 7240: comma-separated preferences, each possibly with parameters after ";".
    preferences = request.headers.get("Prefer", "")
    return any(part.split(";")[0].strip().lower() == "respond-async" for part in preferences.split(","))


class MLAccountSyncAllView(APIView):
    """Queue a sync of every account of the user; wait for them up to a deadline, or not."""

    throttle_classes = (UserThrottle, MLActionThrottle)

    @api_operation(
        operation_id="syncAllMlAccounts",
        summary="Sync all your accounts",
        description="Queues one sync per account you may sync (operator and up; accounts you only "
        "view are left out), by the dashboard's rules: paused accounts are "
        "skipped and listed as failed with code ACCOUNT_PAUSED, expired ones with TOKEN_EXPIRED "
        "(resume an account to try it again). Then waits at most SYNC_ALL_TIMEOUT seconds (20 by "
        "default): syncs still running then are listed as failed with code TIMEOUT and finish in "
        "the background. With `Prefer: respond-async` it answers 202 at once with the job; poll "
        "the `Location` header's URL (GET /api/sync-jobs/{id}) for the outcome.",
        tag=ACCOUNTS,
        ok={200: SyncAllResponse, 202: SyncJobResponse},
        parameters=[PREFER_ASYNC],
    )
    def post(self, request):
        plan = ondemand.sync_all(user=request.user, with_job=True)
        if _prefers_async(request):
            data = syncing.job_answer(plan.job, selectors.sync_job_items(job=plan.job))
            response = envelope(s.SyncJobSerializer(data).data, status_code=202)
            response["Location"] = reverse("api:sync-job", kwargs={"id": plan.job.pk})
            response["Preference-Applied"] = "respond-async"
            return response
        ondemand.sync_job_wait(job=plan.job, timeout=settings.SYNC_ALL_TIMEOUT)
        items = selectors.sync_job_items(job=plan.job)
        return envelope(s.SyncAllSerializer(syncing.sync_all_answer(items)).data)


class SyncJobView(APIView):
    """A sync-all job: its status and each account's outcome so far."""

    @api_operation(
        operation_id="getSyncJob",
        summary="A sync-all job's progress and results",
        description="Jobs are kept for a day. `status` is `done` once every sync has ended; "
        "until then the syncs still running are listed with code PENDING.",
        tag=ACCOUNTS,
        ok={200: SyncJobResponse},
        errors={404: ("NOT_FOUND",)},
        parameters=[JOB_ID],
    )
    def get(self, request, id):
        job = selectors.sync_job_get_for_user(user=request.user, job_id=id)
        data = syncing.job_answer(job, selectors.sync_job_items(job=job))
        return envelope(s.SyncJobSerializer(data).data)


def _status_change(verb: str, summary: str, *, post: bool):
    # PUT is the contract's verb; POST is the same operation for clients that cannot send PUT.
    return api_operation(
        operation_id=f"{verb}MlAccount{'Post' if post else ''}",
        summary=summary,
        tag=ACCOUNTS,
        ok={200: AccountResponse},
        errors={404: ("NOT_FOUND",)},
        account_id=True,
    )


class MLAccountPauseView(AccountView):
    """Stop scheduled syncs of an account."""

    @_status_change("pause", "Pause scheduled syncs", post=False)
    def put(self, request, id):
        return _account_answer(services.mlaccount_pause(account=self.get_account(id, Can.MANAGE)))

    @_status_change("pause", "Pause scheduled syncs", post=True)
    def post(self, request, id):
        return self.put(request, id)


class MLAccountResumeView(AccountView):
    """Resume an account from any status, expired included; its next sync is due now."""

    @_status_change("resume", "Resume scheduled syncs", post=False)
    def put(self, request, id):
        return _account_answer(services.mlaccount_resume(account=self.get_account(id, Can.MANAGE)))

    @_status_change("resume", "Resume scheduled syncs", post=True)
    def post(self, request, id):
        return self.put(request, id)


def _token_status(account) -> dict:
    return {"accountId": account.pk, "status": account.status, "tokenInfo": tokens.token_info(account)}


def _refresh(post: bool):
    return api_operation(
        operation_id=f"refreshMlAccountToken{'Post' if post else ''}",
        summary="Renew the token pair now",
        tag=ACCOUNTS,
        ok={200: RefreshResponse},
        errors={
            400: ("NO_REFRESH_TOKEN",),
            401: ("TOKEN_REFRESH_FAILED",),
            404: ("NOT_FOUND",),
            429: ("ML_RATE_LIMITED",),
            502: ("ML_UNAVAILABLE",),
        },
        account_id=True,
    )


class MLAccountRefreshTokenView(AccountView):
    """Renew the account's token pair now (the single-flight refresh of accounts.tokens)."""

    throttle_classes = (UserThrottle, MLActionThrottle)

    @_refresh(post=False)
    def put(self, request, id):
        account = self.get_account(id, Can.MANAGE)
        try:
            with deadline.within(settings.SYNC_REQUEST_DEADLINE):
                tokens.renew_now(account)
        except MLInvalidGrant:
            # accounts.tokens already marked the account expired (and committed that).
            raise TokenRefreshFailed() from None
        except MLRateLimited as error:
            raise MLRateLimitedError(retry_after=error.retry_after) from None
        except MLError:
            raise MLUnavailableError() from None
        account = self.get_account(id)
        data = {**_token_status(account), "tokenExpiresAt": account.token_expires_at}
        return envelope(s.RefreshResultSerializer(data).data)

    @_refresh(post=True)
    def post(self, request, id):
        return self.put(request, id)


class MLAccountTokenInfoView(AccountView):
    """The health of the account's stored access token."""

    @api_operation(
        operation_id="getMlAccountTokenInfo",
        summary="Token health",
        tag=ACCOUNTS,
        ok={200: TokenInfoResponse},
        errors={404: ("NOT_FOUND",)},
        account_id=True,
    )
    def get(self, request, id):
        return envelope(s.TokenStatusSerializer(_token_status(self.get_account(id))).data)


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """Any other path under /api/: 404 in the envelope, whatever the method."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise exceptions.NotFound()

    def get(self, request, *args, **kwargs):
        raise exceptions.NotFound()

    post = put = patch = delete = head = options = get
