"""Admin registrations. Tokens never appear: not in lists, not in change forms."""

from datetime import timedelta

from allauth.account.adapter import get_adapter as get_allauth_adapter
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import IntegerField, Value
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import selectors, services
from accounts.models import (
    AccountEvent,
    Alert,
    AuditAction,
    AuditEntry,
    Claim,
    Invitation,
    Membership,
    MLAccount,
    Notification,
    Order,
    Question,
    ReputationSnapshot,
    SavedReply,
    User,
    Workspace,
)
from accounts.tokens import token_health
from sync import notifications, ondemand, schedule, tasks


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's login through allauth's adapter, so it has the dashboard login's limits.

    allauth counts failed logins per IP and per canonical address (settings
    ACCOUNT_RATE_LIMITS "login_failed", keyed in accounts.adapter), in the same counters as
    the dashboard's login: a guesser cannot move from one form to the other, nor to a
    look-alike spelling. Once the limit is reached even the right password is refused.
    """

    def clean(self):
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            # Raises allauth's "too many failed login attempts" error when limited.
            self.user_cache = get_allauth_adapter(self.request).authenticate(
                self.request, email=email, password=password
            )
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


admin.site.login_form = AdminLoginForm
admin.site.site_header = admin.site.site_title = lazy(
    lambda: _("%(site_name)s administration") % {"site_name": settings.SITE_NAME}, str
)()
admin.site.index_title = lazy(lambda: settings.SITE_NAME, str)()
# The index and the breadcrumbs lead everywhere already; on a 1366 px laptop the sidebar
# would take a quarter of every list's width (tests/e2e/test_layout.py).
admin.site.enable_nav_sidebar = False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def get_deleted_objects(self, objs, request):
        """Refuse to delete the only owner of a shared workspace (the admin lists the
        workspace as protected): give it another owner, or delete it, first. Their personal
        workspace goes with them, as before."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for user in objs:
            for workspace in selectors.workspaces_only_owned_by(user=user):
                protected.append(
                    _("%(workspace)s: %(email)s is its only owner; give it another owner first.")
                    % {"workspace": workspace.name, "email": user.email}
                )
        return deleted, counts, perms_needed, protected


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role", "scoped", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    """Workspaces and their members. A member's account scope is set on the dashboard's
    members page (or the API); here it shows whether one is set."""

    list_display = ["name", "personal_for", "created_at"]
    search_fields = ["name", "personal_for__email", "memberships__user__email"]
    list_select_related = ["personal_for"]
    raw_id_fields = ["personal_for"]
    # The alert rules are set on the alert settings page (checked, and in the audit log).
    readonly_fields = ["id", "created_at", "alerts_off", "failing_alert_hours"]
    inlines = [MembershipInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made on the members page (which emails the link); here they can be
    looked at. The token is never stored, only its hash, which is not shown either."""

    list_display = ["email", "workspace", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["email", "workspace__name"]
    list_select_related = ["workspace"]
    exclude = ["token_hash"]
    readonly_fields = [
        "id",
        "workspace",
        "email",
        "role",
        "account_ids",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    ]

    def has_add_permission(self, request):
        return False


class AccountEventInline(admin.TabularInline):
    model = AccountEvent
    fields = ["created_at", "kind", "http_status", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MLAccount)
class MLAccountAdmin(admin.ModelAdmin):
    # Narrow enough for a 1366 px laptop beside the filters, in Portuguese too: the nickname
    # under the name, short dates, short headers (the admin never wraps a header); site and
    # primary are filters only (tests/e2e/test_layout.py).
    list_display = [
        "seller_display",
        "workspace_display",
        "status",
        "last_sync_display",
        "token_expires_display",
        "errors_display",
        "interval_display",
    ]
    list_filter = ["status", "site_id", "is_primary", "sync_enabled"]
    search_fields = ["nickname", "account_name", "workspace__name", "email", "=ml_user_id"]
    list_select_related = ["workspace"]
    raw_id_fields = ["workspace"]
    inlines = [AccountEventInline]
    actions = ["pause_accounts", "resume_accounts", "sync_now", "refresh_tokens"]
    # The secret columns are left out of the form entirely (exclude), so the change page
    # cannot render them, and are deferred so lists do not even decrypt them. The refresh
    # lease too: deferred, a save() from this page never writes it back.
    exclude = (*MLAccount.SECRET_FIELDS, *MLAccount.LEASE_FIELDS)
    readonly_fields = [
        "id",
        "ml_user_id",
        "connected_by",
        "status",
        "is_primary",
        "last_sync",
        "next_sync",
        "last_sync_status",
        "last_sync_error",
        "error_count",
        "sync_started_at",
        "cached_products",
        "cached_orders",
        "cached_questions",
        "cached_claims",
        "cached_at",
        "token_scopes",
        "token_expires_at",
        "token_obtained_at",
        "last_token_refresh",
        "token_health_display",
        "effective_interval_display",
        "last_notification_at",
        "last_poll_change_at",
        "disconnected_at",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request):
        # The budget cycle is one figure for the whole fleet: computed once per page (a
        # few grouped rows), carried on every row for effective_interval_display.
        cycle = schedule.budget_cycle_seconds()
        return (
            super()
            .get_queryset(request)
            .defer(*MLAccount.SECRET_FIELDS, *MLAccount.LEASE_FIELDS)
            .annotate(budget_cycle_seconds=Value(cycle, output_field=IntegerField()))
        )

    @admin.display(description=_("seller"), ordering="account_name")
    def seller_display(self, obj):
        return format_html("{}<br><small>@{}</small>", obj.account_name, obj.nickname)

    @admin.display(description=_("workspace"), ordering="workspace__name")
    def workspace_display(self, obj):
        # A method, not the foreign key itself, which the admin would never wrap.
        return obj.workspace.name

    @admin.display(description=_("last sync"), ordering="last_sync")
    def last_sync_display(self, obj):
        return self._short_time(obj.last_sync)

    @admin.display(description=_("token expires"), ordering="token_expires_at")
    def token_expires_display(self, obj):
        return self._short_time(obj.token_expires_at)

    @admin.display(description=_("errors"), ordering="error_count")
    def errors_display(self, obj):
        return obj.error_count

    def _short_time(self, value):
        if value is None:
            return self.get_empty_value_display()
        return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("interval"))
    def interval_display(self, obj):
        return self.effective_interval_display(obj)

    @admin.display(description=_("effective sync interval"))
    def effective_interval_display(self, obj):
        """Its interval, the error back-off, or the budget-limited cycle when that is longer."""
        seconds = schedule.effective_interval(obj, budget_cycle=getattr(obj, "budget_cycle_seconds", None))
        if seconds is None:
            return _("not scheduled")
        minutes, rest = divmod(seconds, 60)
        text = " ".join(part for part in (f"{minutes} min" * bool(minutes), f"{rest} s" * bool(rest)) if part)
        if seconds > obj.sync_interval:
            if obj.status == MLAccount.Status.ERROR:
                reason = _("error back-off")
            elif schedule.notifications_arrive(obj) and seconds == settings.ML_RECONCILE_INTERVAL:
                reason = _("reconciliation: notifications arrive")
            else:
                reason = _("request budget")
            return f"{text} ({reason})"
        return text

    def has_add_permission(self, request):
        # Accounts are connected through OAuth or the API, which hold the token pair.
        return False

    def save_model(self, request, obj, form, change):
        # This form saves the row itself, not through mlaccount_update: the audit entry of
        # its changes is written here, from what the row held to what it holds now.
        if not change or not form.changed_data:
            super().save_model(request, obj, form, change)
            return
        before = MLAccount.objects.defer(*MLAccount.SECRET_FIELDS, *MLAccount.LEASE_FIELDS).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        changes = {
            name: [_plain(getattr(before, name)), _plain(getattr(obj, name))] for name in form.changed_data
        }
        services.audit_record(action=AuditAction.SETTINGS, account=obj, changes=changes)

    @admin.display(description=_("token health"))
    def token_health_display(self, obj):
        health = token_health(obj)
        if health.expires_at is None:
            return _("no token")
        return f"{health.health_percent}%"

    @admin.action(description=_("Pause selected accounts"))
    def pause_accounts(self, request, queryset):
        for account in queryset:
            services.mlaccount_pause(account=account)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%(count)d account paused.", "%(count)d accounts paused.", count) % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Resume selected accounts"))
    def resume_accounts(self, request, queryset):
        for account in queryset:
            services.mlaccount_resume(account=account)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%(count)d account resumed.", "%(count)d accounts resumed.", count) % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Sync selected accounts now"))
    def sync_now(self, request, queryset):
        accounts = list(queryset)
        ondemand.sync_request_many(accounts=accounts)
        account_ids = [account.pk for account in accounts]
        self.message_user(
            request,
            ngettext(
                "%(count)d account queued for a sync.",
                "%(count)d accounts queued for a sync.",
                len(account_ids),
            )
            % {"count": len(account_ids)},
            messages.SUCCESS,
        )

    @admin.action(description=_("Refresh the selected accounts' tokens now"))
    def refresh_tokens(self, request, queryset):
        accounts = list(queryset)
        ondemand.refresh_request_many(accounts=accounts)
        account_ids = [account.pk for account in accounts]
        self.message_user(
            request,
            ngettext(
                "%(count)d token queued for renewal.",
                "%(count)d tokens queued for renewal.",
                len(account_ids),
            )
            % {"count": len(account_ids)},
            messages.SUCCESS,
        )


def _plain(value):
    """A value as the audit log's JSON keeps it: a related row by its name."""
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log, read only: no entry can be added, changed or deleted here (the model
    and, on PostgreSQL, a trigger refuse it too)."""

    list_display = ["at", "action", "actor_email", "workspace_name", "account_label", "ip"]
    list_filter = ["action"]
    search_fields = ["actor_email", "account_label", "workspace_name", "=ip"]
    date_hierarchy = "at"
    fields = [
        "at",
        "action",
        "actor_email",
        "actor_id",
        "workspace_name",
        "workspace_id",
        "account_label",
        "account_id",
        "ip",
        "user_agent",
        "changes",
    ]
    readonly_fields = fields
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Mercado Livre notifications as they arrived: read only, with "retry failed"."""

    list_display = [
        "arrived_display",
        "topic",
        "resource",
        "account_display",
        "status",
        "reason",
        "tries",
        "lag_display",
    ]
    list_filter = ["status", "topic", "source", ("account", admin.EmptyFieldListFilter)]
    search_fields = ["resource", "=ml_user_id", "=ml_id", "account__nickname", "account__account_name"]
    list_select_related = ["account"]
    date_hierarchy = "arrived_at"
    actions = ["retry_failed"]
    fields = [
        "ml_id",
        "topic",
        "resource",
        "ml_user_id",
        "account",
        "application_id",
        "source",
        "status",
        "reason",
        "tries",
        "next_attempt_at",
        "attempts",
        "sent_at",
        "received_at",
        "arrived_at",
        "processed_at",
        "lag_ms",
        "body",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body", "account__access_token", "account__refresh_token")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        silent = selectors.notification_silent_topics(
            accounts=MLAccount.objects.all(),
            notifications=Notification.objects.all(),
            since=timezone.now() - timedelta(seconds=settings.ML_NOTIFICATIONS_SILENT_AFTER),
        )
        if silent:
            self.message_user(
                request,
                _(
                    "No notification of %(topics)s arrived lately although syncs found those numbers "
                    "changed: check the notifications URL and topics of the application in Mercado "
                    "Livre's DevCenter."
                )
                % {"topics": ", ".join(silent)},
                messages.WARNING,
            )
        foreign = notifications.foreign_count()
        if foreign:
            self.message_user(
                request,
                ngettext(
                    "%(count)d notification of another Mercado Livre application was dropped.",
                    "%(count)d notifications of other Mercado Livre applications were dropped.",
                    foreign,
                )
                % {"count": foreign},
                messages.INFO,
            )
        if not settings.ML_WEBHOOK_SECRET:
            self.message_user(
                request,
                _(
                    "Notifications are off: set ML_WEBHOOK_SECRET and register the notifications URL "
                    "at Mercado Livre."
                ),
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("arrived"), ordering="arrived_at")
    def arrived_display(self, obj):
        return date_format(timezone.localtime(obj.arrived_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("account"), ordering="account__account_name")
    def account_display(self, obj):
        return obj.account.account_name if obj.account_id else self.get_empty_value_display()

    @admin.display(description=_("lag"), ordering="lag_ms")
    def lag_display(self, obj):
        return self.get_empty_value_display() if obj.lag_ms is None else f"{obj.lag_ms / 1000:.1f} s"

    @admin.action(description=_("Retry the selected failed notifications"))
    def retry_failed(self, request, queryset):
        account_ids = services.notification_retry_failed(ids=list(queryset.values_list("pk", flat=True)))
        for account_id in account_ids:
            tasks.process_account_notifications.delay_on_commit(account_id)
        self.message_user(
            request,
            ngettext(
                "Failed notifications of %(count)d account queued for processing.",
                "Failed notifications of %(count)d accounts queued for processing.",
                len(account_ids),
            )
            % {"count": len(account_ids)},
            messages.SUCCESS,
        )


class MirrorAdmin(admin.ModelAdmin):
    """The desk's mirrors are Mercado Livre's data as the last sync read it: shown, never
    edited here (a change would be overwritten by the next sync, or contradict ML)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Question)
class QuestionAdmin(MirrorAdmin):
    list_display = ["id", "account", "status", "date_created", "item_id", "answered_by", "answered_at"]
    list_filter = ["status"]
    search_fields = ["=id", "item_id", "account__account_name", "account__nickname"]
    list_select_related = ["account", "answered_by"]
    raw_id_fields = ["account", "answered_by"]


@admin.register(Claim)
class ClaimAdmin(MirrorAdmin):
    list_display = ["id", "account", "type", "stage", "reason_id", "due_date", "action_responsible"]
    list_filter = ["type", "stage", "action_responsible"]
    search_fields = ["=id", "=resource_id", "account__account_name", "account__nickname"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]


@admin.register(Order)
class OrderAdmin(MirrorAdmin):
    list_display = [
        "id",
        "account",
        "status",
        "total_amount",
        "currency",
        "date_created",
        "items",
        "sale_fees",
    ]
    list_filter = ["status", "currency"]
    search_fields = ["=id", "=pack_id", "account__account_name", "account__nickname"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    date_hierarchy = "date_created"


@admin.register(ReputationSnapshot)
class ReputationSnapshotAdmin(MirrorAdmin):
    list_display = [
        "account",
        "day",
        "level_id",
        "power_seller_status",
        "real_level",
        "claims_rate",
        "delayed_handling_rate",
        "cancellations_rate",
    ]
    list_filter = ["level_id", "power_seller_status"]
    search_fields = ["account__account_name", "account__nickname"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]


@admin.register(SavedReply)
class SavedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "workspace", "updated_at"]
    search_fields = ["title", "workspace__name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["workspace", "created_by"]


@admin.register(Alert)
class AlertAdmin(MirrorAdmin):
    """Alerts as they fired (accounts.services.alerts): what happened, shown, not edited."""

    list_display = ["created_at", "kind", "account_label", "workspace"]
    list_filter = ["kind"]
    search_fields = ["account_label", "workspace__name"]
    list_select_related = ["workspace"]
    raw_id_fields = ["account", "workspace"]
    date_hierarchy = "created_at"
