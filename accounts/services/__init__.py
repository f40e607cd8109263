"""Writes. The dashboard, the API, the admin and the background tasks all call these.

One module per entity (architecture.md): `mlaccounts` (connect, settings, pause, resume,
remove), `workspaces` (workspaces, members, invitations), `sync_state` (the engine's and
the jobs' bookkeeping), `sync_jobs` (syncs a user asked for), `oauth`, `users`, `events`.
Callers import this package and use `services.<entity>_<verb>`.

Conventions: keyword-only arguments, `<entity>_<verb>` names, one transaction each. Writes
that can race with a sync or with another request use row locks or conditional UPDATEs on
the columns they own, never a read-modify-write `save()` of the whole row.
"""

from accounts.services.events import EVENT_MAX_AGE_DAYS, event_cleanup, event_record
from accounts.services.mlaccounts import (
    mlaccount_connect,
    mlaccount_connect_pasted,
    mlaccount_make_primary,
    mlaccount_pause,
    mlaccount_remove,
    mlaccount_resume,
    mlaccount_update,
)
from accounts.services.oauth import oauth_begin, oauth_complete, oauth_state_purge_expired
from accounts.services.sync_jobs import (
    mlaccount_clear_sync_request,
    mlaccount_mark_sync_requested,
    sync_job_cleanup,
    sync_job_create,
    sync_job_item_finish,
)
from accounts.services.sync_state import (
    MAX_ERROR_BACKOFF,
    RefreshClaim,
    error_backoff_seconds,
    mlaccount_claim,
    mlaccount_dispatch_due,
    mlaccount_mark_expired,
    mlaccount_record_sync_failure,
    mlaccount_record_sync_success,
    mlaccount_refresh_claim,
    mlaccount_refresh_refused,
    mlaccount_refresh_release,
    mlaccount_refresh_store,
    mlaccount_release,
    mlaccount_release_stale_claims,
)
from accounts.services.users import (
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    user_register,
    user_revoke_api_tokens,
)
from accounts.services.validation import (
    MAX_ML_USER_ID,
    MAX_TEXT,
    MAX_TOKEN_LENGTH,
    ML_USER_ID_PATTERN,
    ML_USER_ID_RE,
    SITE_ID_PATTERN,
)
from accounts.services.workspaces import (
    invitation_accept,
    invitation_check,
    invitation_create,
    invitation_revoke,
    membership_remove,
    membership_update,
    workspace_create,
    workspace_current,
    workspace_delete,
    workspace_personal,
    workspace_rename,
    workspace_switch,
)

__all__ = [
    "EVENT_MAX_AGE_DAYS",
    "MAX_ERROR_BACKOFF",
    "MAX_ML_USER_ID",
    "MAX_NAME_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "MAX_TEXT",
    "MAX_TOKEN_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "ML_USER_ID_PATTERN",
    "ML_USER_ID_RE",
    "SITE_ID_PATTERN",
    "RefreshClaim",
    "error_backoff_seconds",
    "event_cleanup",
    "event_record",
    "invitation_accept",
    "invitation_check",
    "invitation_create",
    "invitation_revoke",
    "membership_remove",
    "membership_update",
    "mlaccount_claim",
    "mlaccount_clear_sync_request",
    "mlaccount_connect",
    "mlaccount_connect_pasted",
    "mlaccount_dispatch_due",
    "mlaccount_make_primary",
    "mlaccount_mark_expired",
    "mlaccount_mark_sync_requested",
    "mlaccount_pause",
    "mlaccount_record_sync_failure",
    "mlaccount_record_sync_success",
    "mlaccount_refresh_claim",
    "mlaccount_refresh_refused",
    "mlaccount_refresh_release",
    "mlaccount_refresh_store",
    "mlaccount_release",
    "mlaccount_release_stale_claims",
    "mlaccount_remove",
    "mlaccount_resume",
    "mlaccount_update",
    "oauth_begin",
    "oauth_complete",
    "oauth_state_purge_expired",
    "sync_job_cleanup",
    "sync_job_create",
    "sync_job_item_finish",
    "user_register",
    "user_revoke_api_tokens",
    "workspace_create",
    "workspace_current",
    "workspace_delete",
    "workspace_personal",
    "workspace_rename",
    "workspace_switch",
]
