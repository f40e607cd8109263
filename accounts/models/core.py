"""The domain's core tables: users, workspaces and their members, Mercado Livre seller accounts, errors."""

import uuid

from cryptography.fernet import InvalidToken
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from encrypted_fields.fields import EncryptedTextField as _BaseEncryptedTextField

from accounts.emails import InvalidEmail, canonical_email

MIN_SYNC_INTERVAL = 60  # seconds; api-contract.md: syncInterval >= 60000 ms
MAX_SYNC_INTERVAL = 7 * 24 * 3600
DEFAULT_SYNC_INTERVAL = 300
MAX_EVENTS_PER_ACCOUNT = 20
DEFAULT_RESPONSE_TARGET_MINUTES = 60
MAX_RESPONSE_TARGET_MINUTES = 7 * 24 * 60
DEFAULT_REPUTATION_MARGIN_PERCENT = 20
DEFAULT_FAILING_ALERT_HOURS = 6
MAX_FAILING_ALERT_HOURS = 24 * 14
MAX_REPUTATION_MARGIN_PERCENT = 90
ERROR_STATUS_AFTER = 5  # consecutive transient failures before an account shows "error"


class TokenDecryptionError(Exception):
    """A stored token could not be decrypted with any configured key."""


class EncryptedTextField(_BaseEncryptedTextField):
    """Fernet-encrypted text that fails loudly when no configured key opens it.

    The upstream field returns the ciphertext itself when decryption fails, which would
    send garbage to Mercado Livre as a bearer token; a key misconfiguration (SECRET_KEY or
    SALT_KEY changed without keeping the old one as a fallback) must be seen instead.
    """

    def get_prep_value(self, value):
        # Python-side values are always plain text; encrypt on the way to the database.
        # (The upstream field runs TextField.get_prep_value first, which calls to_python,
        # which tries to decrypt the plain text: that is why it swallows decryption errors.)
        if value is None or value == "":
            return None
        return self.f.encrypt(str(value).encode("utf-8")).decode("utf-8")

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        try:
            return self.f.decrypt(value.encode("utf-8")).decode("utf-8")
        except InvalidToken:
            raise TokenDecryptionError(
                f"{self.model.__name__}.{self.name} cannot be decrypted with the configured "
                "SECRET_KEY/SALT_KEY; keep the old keys as fallbacks (comma lists) while rotating."
            ) from None

    def to_python(self, value):
        # Values in Python (forms, fixtures, assignments) are plain text already.
        return value

    def reset_keys(self) -> None:
        """Forget derived keys so that changed settings take effect (tests, key rotation)."""
        self.__dict__.pop("keys", None)
        self.__dict__.pop("f", None)


class UserManager(DjangoUserManager):
    """Users log in by email, stored and looked up in its canonical form (accounts.emails)."""

    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email):
        """The canonical form of `email`; raises InvalidEmail (a ValueError) when it has none."""
        return canonical_email(email or "")

    def get_by_natural_key(self, username):
        # An exact match on the unique canonical column: one user or none, never
        # MultipleObjectsReturned (a case-insensitive lookup could find look-alikes).
        try:
            return self.get(email=canonical_email(username or ""))
        except InvalidEmail:
            raise self.model.DoesNotExist from None

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    username = None
    # Always in canonical form (accounts.emails; UserManager.normalize_email, User.clean,
    # allauth's adapter): the unique constraint then holds per mailbox, not per spelling.
    email = models.EmailField(_("email address"), max_length=254, unique=True)
    # Carried by every API bearer token; bumping it revokes them all (API and dashboard logout).
    api_token_version = models.PositiveIntegerField(default=0, editable=False)
    # The workspace the dashboard shows (the switcher's choice), remembered across sessions.
    current_workspace = models.ForeignKey(
        "Workspace", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    # The language of the emails this user gets ("" is the installation's LANGUAGE_CODE).
    language = models.CharField(_("email language"), max_length=8, blank=True, default="")
    # Unread alerts in the inbox, kept beside the user (read on every request anyway) so the
    # header's bell costs no query; accounts.services.alerts keeps it exact.
    unread_alerts = models.PositiveIntegerField(default=0, editable=False)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        # AbstractUser.clean() canonicalises the email too, but would raise InvalidEmail (a
        # 500 in the admin's forms) for a domain IDNA cannot encode.
        try:
            self.email = canonical_email(self.email or "")
        except InvalidEmail:
            raise ValidationError({"email": _("Enter a valid email address.")}) from None


class Role(models.TextChoices):
    """A member's role in a workspace; each one can do what the roles below it can."""

    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    OPERATOR = "operator", _("Operator")
    VIEWER = "viewer", _("Viewer")


class Workspace(models.Model):
    """Owns Mercado Livre accounts; users reach them through a Membership with a role.

    Every user has a personal workspace (`personal_for`), made at sign-up or on first use.
    """

    MAX_NAME = 100

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=MAX_NAME)
    # The user whose personal workspace this is: it cannot be deleted, and accounts connected
    # through the API without a workspaceId land in it.
    personal_for = models.OneToOneField(
        User,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="personal_workspace",
        verbose_name=_("personal workspace of"),
    )
    # How soon a buyer's question should be answered: the questions queue colours each age
    # against it (ML weighs response time in the reputation).
    response_target_minutes = models.PositiveIntegerField(
        _("response target (minutes)"),
        default=DEFAULT_RESPONSE_TARGET_MINUTES,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RESPONSE_TARGET_MINUTES)],
    )
    # How close to ML's limit a reputation rate may come before the pages warn: a share of
    # the limit (20: warn from 80 % of it).
    reputation_margin_percent = models.PositiveSmallIntegerField(
        _("reputation warning margin (%)"),
        default=DEFAULT_REPUTATION_MARGIN_PERCENT,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_REPUTATION_MARGIN_PERCENT)],
    )
    # Alerts (accounts.services.alerts): the kinds switched off here, and after how many hours
    # of failing syncs an account's "failing" alert fires.
    alerts_off = models.JSONField(_("alerts switched off"), default=list, blank=True)
    failing_alert_hours = models.PositiveIntegerField(
        _("failing alert after (hours)"),
        default=DEFAULT_FAILING_ALERT_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_FAILING_ALERT_HOURS)],
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("workspace")
        verbose_name_plural = _("workspaces")
        ordering = ["name", "created_at"]

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<Workspace {self.pk} personal_for={self.personal_for_id}>"


class Membership(models.Model):
    """A user's role in a workspace, limited to chosen accounts when `scoped`.

    An owner is never scoped. A scoped member sees exactly the accounts of `accounts`
    (an agency's client, say, sees only their own store).
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("workspace")
    )
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    scoped = models.BooleanField(_("limited to chosen accounts"), default=False)
    accounts = models.ManyToManyField(
        "MLAccount", through="MembershipAccount", related_name="+", blank=True, verbose_name=_("accounts")
    )
    created_at = models.DateTimeField(_("member since"), auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        ordering = ["workspace", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_workspace_user_unique"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
            models.CheckConstraint(
                condition=~Q(role=Role.OWNER, scoped=True), name="membership_owner_never_scoped"
            ),
        ]
        indexes = [models.Index(fields=["user", "workspace"], name="membership_user_idx")]

    def __str__(self):
        return f"{self.user} · {self.get_role_display()} · {self.workspace}"


class MembershipAccount(models.Model):
    """One account a scoped membership covers."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="scope")
    account = models.ForeignKey("MLAccount", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "account"], name="membershipaccount_unique"),
        ]
        indexes = [models.Index(fields=["account"], name="membershipaccount_account_idx")]

    def __str__(self):
        return f"{self.membership_id} → {self.account_id}"


class Invitation(models.Model):
    """An invitation by email to join a workspace: single use, bound to the address.

    Only a hash of the token is stored; the token itself is in the link sent by email
    (and returned once, to whoever created the invitation).
    """

    LIFETIME_DAYS = 7

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("workspace")
    )
    # Canonical form (accounts.emails), compared exactly with the accepting user's.
    email = models.EmailField(_("email address"), max_length=254)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    # None: every account of the workspace; otherwise the ids of the accounts it grants.
    account_ids = models.JSONField(_("accounts"), null=True, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("invited by")
    )
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("accepted by"),
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="invitation_role_valid"),
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="invitation_workspace_idx")]

    def __str__(self):
        return f"{self.email} → {self.workspace} ({self.get_role_display()})"

    def __repr__(self):
        return f"<Invitation {self.pk} workspace={self.workspace_id}>"


class AccountStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    ERROR = "error", _("Error")
    EXPIRED = "expired", _("Reconnect needed")


class SyncStatus(models.TextChoices):
    NONE = "", _("Never synced")
    SUCCESS = "success", _("Success")
    FAILED = "failed", _("Failed")
    IN_PROGRESS = "in_progress", _("In progress")


class AccountType(models.TextChoices):
    INDIVIDUAL = "individual", _("Individual")
    STORE = "store", _("Store")
    BUSINESS = "business", _("Business")


class MLAccount(models.Model):
    """A Mercado Livre seller account, owned by a workspace.

    One row per seller in the whole installation (`ml_user_id` is unique): Mercado Livre
    keeps one live grant per (application, seller), so a second row would kill the first's.
    """

    Status = AccountStatus
    SyncStatus = SyncStatus
    AccountType = AccountType

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="ml_accounts", verbose_name=_("workspace")
    )
    # Who connected it (or last reconnected it): a record, not an access right.
    connected_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("connected by"),
    )

    ml_user_id = models.BigIntegerField(_("Mercado Livre user id"))
    nickname = models.CharField(_("nickname"), max_length=255)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    site_id = models.CharField(_("site"), max_length=4, default="MLB")
    account_name = models.CharField(_("account name"), max_length=255)
    account_type = models.CharField(
        _("account type"), max_length=16, choices=AccountType.choices, default=AccountType.INDIVIDUAL
    )

    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    is_primary = models.BooleanField(_("primary"), default=False)
    sync_enabled = models.BooleanField(_("sync enabled"), default=True)
    sync_interval = models.PositiveIntegerField(
        _("sync interval (seconds)"),
        default=DEFAULT_SYNC_INTERVAL,
        validators=[MinValueValidator(MIN_SYNC_INTERVAL), MaxValueValidator(MAX_SYNC_INTERVAL)],
    )
    notifications_enabled = models.BooleanField(_("notifications enabled"), default=True)
    email_notifications_enabled = models.BooleanField(_("email notifications enabled"), default=True)

    last_sync = models.DateTimeField(_("last sync"), null=True, blank=True)
    next_sync = models.DateTimeField(_("next sync"), null=True, blank=True)
    last_sync_status = models.CharField(
        _("last sync status"), max_length=16, choices=SyncStatus.choices, blank=True, default=""
    )
    last_sync_error = models.TextField(_("last sync error"), blank=True, default="")
    error_count = models.PositiveIntegerField(_("consecutive errors"), default=0)
    # The claim lease: set while a sync holds the account; older than the lease = abandoned.
    sync_started_at = models.DateTimeField(_("sync claimed at"), null=True, blank=True)
    # Someone asked for a sync now ("sync now", "sync all"): its task is queued. Cleared by
    # the task when its sync ends, so the dashboard can show "queued…" until then.
    sync_requested_at = models.DateTimeField(_("sync requested at"), null=True, blank=True)

    cached_products = models.PositiveIntegerField(_("active listings"), null=True, blank=True)
    cached_orders = models.PositiveIntegerField(_("orders (30 days)"), null=True, blank=True)
    cached_questions = models.PositiveIntegerField(_("unanswered questions"), null=True, blank=True)
    cached_claims = models.PositiveIntegerField(_("open claims"), null=True, blank=True)
    cached_at = models.DateTimeField(_("counts updated"), null=True, blank=True)

    access_token = EncryptedTextField(null=True, blank=True)
    refresh_token = EncryptedTextField(null=True, blank=True)
    token_scopes = models.CharField(_("token scopes"), max_length=2000, blank=True, default="")
    token_expires_at = models.DateTimeField(_("token expires"), null=True, blank=True)
    # When the current pair was stored (by connect or refresh): the start of its lifetime.
    token_obtained_at = models.DateTimeField(_("token obtained"), null=True, blank=True)
    last_token_refresh = models.DateTimeField(_("last token refresh"), null=True, blank=True)
    # The refresh lease (accounts.tokens): who is renewing the pair right now, and until when.
    # A lease, not a row lock, so that no transaction stays open across the call to ML.
    refresh_claim = models.UUIDField(_("token refresh claim"), null=True, blank=True, editable=False)
    refresh_lease_until = models.DateTimeField(_("token refresh lease until"), null=True, blank=True)

    # When ML was found to refuse the grant (the account became `expired`); cleared when the
    # account is reconnected or a sync succeeds again.
    disconnected_at = models.DateTimeField(_("disconnected at"), null=True, blank=True)
    # Mercado Livre notifications (sync/notifications.py): when the last one for this seller
    # arrived (an account that gets them is polled only as a reconciliation), and when a
    # scheduled poll last found counts that had changed without a notification saying so
    # (`poll_change_mask`: which counts, COUNT_BITS), a sign that notifications are missing.
    last_notification_at = models.DateTimeField(_("last notification"), null=True, blank=True)
    last_poll_change_at = models.DateTimeField(_("last change found by polling"), null=True, blank=True)
    poll_change_mask = models.PositiveSmallIntegerField(default=0, editable=False)
    # The last full scan of the unanswered questions (sync.mirrors): in between, a sync reads
    # only the newest page, as long as ML's total agrees with the mirror.
    questions_scanned_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The orders mirror (sync.mirrors.refresh_orders). `orders_synced_at`: every order ML
    # changed before it is mirrored (the next read starts an hour earlier: ML cuts dates to
    # the hour); None until the first import ends. A read too long for one sync goes on in
    # the next from `orders_offset` of the query that began at `orders_read_started_at`.
    orders_synced_at = models.DateTimeField(_("orders mirrored up to"), null=True, blank=True, editable=False)
    orders_read_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    orders_offset = models.PositiveIntegerField(default=0, editable=False)
    # The day (the installation's time zone) of the last reputation snapshot: one a day.
    reputation_day = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # Columns that list pages never need: loading them costs a decryption per row.
    SECRET_FIELDS = ("access_token", "refresh_token")
    # Written only by accounts.tokens' conditional UPDATEs: a form or a whole-row save()
    # must never load and write them back (it would steal or drop a refresh in flight).
    LEASE_FIELDS = ("refresh_claim", "refresh_lease_until")

    class Meta:
        verbose_name = _("Mercado Livre account")
        verbose_name_plural = _("Mercado Livre accounts")
        ordering = ["-is_primary", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["ml_user_id"], name="mlaccount_ml_user_unique"),
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(is_primary=True), name="mlaccount_one_primary_per_workspace"
            ),
            models.CheckConstraint(
                condition=Q(sync_interval__gte=MIN_SYNC_INTERVAL, sync_interval__lte=MAX_SYNC_INTERVAL),
                name="mlaccount_sync_interval_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=AccountStatus.values), name="mlaccount_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(last_sync_status__in=SyncStatus.values), name="mlaccount_last_sync_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(account_type__in=AccountType.values), name="mlaccount_account_type_valid"
            ),
            models.CheckConstraint(condition=Q(ml_user_id__gt=0), name="mlaccount_ml_user_id_positive"),
        ]
        indexes = [
            # dispatch_due_syncs: due, sync enabled, active or error.
            models.Index(
                fields=["next_sync"],
                condition=Q(sync_enabled=True, status__in=["active", "error"]),
                name="mlaccount_due_idx",
            ),
            models.Index(
                fields=["workspace", "-is_primary", "created_at"], name="mlaccount_workspace_list_idx"
            ),
            models.Index(fields=["token_expires_at"], name="mlaccount_token_expiry_idx"),
        ]

    def __str__(self):
        return f"{self.account_name or self.nickname} ({self.site_id} {self.ml_user_id})"

    def __repr__(self):
        # Never let a token reach a log line through repr().
        return f"<MLAccount {self.pk} ml_user_id={self.ml_user_id} status={self.status}>"

    @property
    def cached_issues(self):
        if self.cached_questions is None and self.cached_claims is None:
            return None
        return (self.cached_questions or 0) + (self.cached_claims or 0)


class EventKind(models.TextChoices):
    AUTH = "auth", _("Authorization")
    RATE_LIMITED = "rate_limited", _("Rate limited")
    UNAVAILABLE = "unavailable", _("Mercado Livre unavailable")
    BAD_RESPONSE = "bad_response", _("Unexpected response")
    # A sync whose worker stopped mid-way (killed, crashed); it is retried at once.
    INTERRUPTED = "interrupted", _("Interrupted")
    OTHER = "other", _("Other")


class AccountEvent(models.Model):
    """One entry of an account's error history (the last MAX_EVENTS_PER_ACCOUNT are kept)."""

    Kind = EventKind

    account = models.ForeignKey(MLAccount, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    message = models.TextField(_("message"))
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)

    class Meta:
        verbose_name = _("account event")
        verbose_name_plural = _("account events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"], name="accountevent_account_time_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EventKind.values), name="accountevent_kind_valid")
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.message[:60]}"


class OAuthState(models.Model):
    """A pending "connect with Mercado Livre": the single-use `state` and its PKCE verifier.

    Kept server-side (not in a cookie) so the verifier never reaches the browser, and so
    that "used once" holds even when two callbacks with the same state race each other.
    """

    LIFETIME_SECONDS = 600

    state = models.CharField(max_length=64, unique=True)
    # Who asked; none for a reconnect link's authorization (its owner has no login here).
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", null=True)
    reconnect_link = models.ForeignKey(
        "ReconnectLink", on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    # Where the seller lands: the workspace chosen when the connection started.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", null=True)
    # A hash of the session key: the state only works in the browser session that asked.
    session_hash = models.CharField(max_length=64)
    code_verifier = EncryptedTextField()
    site_id = models.CharField(max_length=4)
    redirect_uri = models.CharField(max_length=2000)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("pending Mercado Livre authorization")
        verbose_name_plural = _("pending Mercado Livre authorizations")

    def __str__(self):
        return f"{self.site_id} authorization started {self.created_at:%Y-%m-%d %H:%M}"

    def __repr__(self):
        return f"<OAuthState user={self.user_id} site={self.site_id}>"


class SyncJob(models.Model):
    """One "sync all" request of the API: which accounts it covered and how each one ended.

    The web request queues one task per account and reads the items back (at once, or
    later through GET /api/sync-jobs/:id); the tasks fill the items in. Purged after a day.
    """

    MAX_AGE_HOURS = 24

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="sync_jobs", verbose_name=_("owner")
    )
    created_at = models.DateTimeField(_("created"), db_index=True)

    class Meta:
        verbose_name = _("sync job")
        verbose_name_plural = _("sync jobs")

    def __str__(self):
        return f"sync all {self.created_at:%Y-%m-%d %H:%M}"

    def __repr__(self):
        return f"<SyncJob {self.pk} owner={self.owner_id}>"


class SyncJobItem(models.Model):
    """One account of a SyncJob: pending until `finished_at`, then its outcome.

    `code` is empty for a success, otherwise the API's error code (TOKEN_EXPIRED,
    ML_UNAVAILABLE, ACCOUNT_PAUSED…); `counts` holds what a successful sync brought back.
    """

    job = models.ForeignKey(SyncJob, on_delete=models.CASCADE, related_name="items")
    account = models.ForeignKey(MLAccount, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    success = models.BooleanField(null=True)
    code = models.CharField(max_length=32, blank=True, default="")
    counts = models.JSONField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="syncjobitem_job_position_unique"),
            models.UniqueConstraint(fields=["job", "account"], name="syncjobitem_job_account_unique"),
        ]

    def __str__(self):
        return f"{self.account_id}: {self.code or ('pending' if self.finished_at is None else 'ok')}"

    def __repr__(self):
        return f"<SyncJobItem job={self.job_id} account={self.account_id} code={self.code!r}>"
