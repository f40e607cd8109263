"""The audit log: who did what to which account or workspace, from where, and what changed.

Append-only. The model refuses to save an existing entry or to delete one, its querysets
refuse bulk updates and deletes, the admin shows entries read only, and on PostgreSQL a
trigger refuses UPDATE and DELETE on the table itself (migration 0013). Entries name the
workspace, the account and the actor by id with a copy of their label, not by foreign key:
an entry outlives the account, the member and even the workspace it is about.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    SIGN_IN = "sign_in", _("Signed in")
    CONNECT = "connect", _("Connected an account")
    RECONNECT = "reconnect", _("Reconnected an account")
    REMOVE = "remove", _("Removed an account")
    PAUSE = "pause", _("Paused an account")
    RESUME = "resume", _("Resumed an account")
    SETTINGS = "settings", _("Changed settings")
    SYNC_NOW = "sync_now", _("Synced now")
    REFRESH = "refresh", _("Renewed the token")
    ANSWER = "answer", _("Answered a question")
    RECONNECT_LINK = "reconnect_link", _("Made a reconnect link")
    MEMBER_CHANGE = "member_change", _("Changed a member")
    MEMBER_REMOVE = "member_remove", _("Removed a member")
    MEMBER_JOIN = "member_join", _("Joined the workspace")
    INVITE = "invite", _("Invited someone")
    INVITE_REVOKE = "invite_revoke", _("Revoked an invitation")


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("the audit log is append-only: entries cannot be updated")

    def delete(self):
        raise TypeError("the audit log is append-only: entries cannot be deleted")


class AuditEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(_("time"), db_index=True)
    action = models.CharField(_("action"), max_length=24, choices=AuditAction.choices)
    actor_id = models.BigIntegerField(_("actor id"), null=True, blank=True)
    # The actor's address when the action was taken ("" for the owner of a reconnect link,
    # who has no login here).
    actor_email = models.CharField(_("actor"), max_length=254, blank=True, default="")
    workspace_id = models.UUIDField(_("workspace id"), null=True, blank=True)
    workspace_name = models.CharField(_("workspace"), max_length=100, blank=True, default="")
    account_id = models.UUIDField(_("account id"), null=True, blank=True)
    account_label = models.CharField(_("account"), max_length=255, blank=True, default="")
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=500, blank=True, default="")
    # What changed: {"field": [from, to]}, or facts about the action ({"question": 123}).
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["workspace_id", "-at", "-id"], name="audit_workspace_idx"),
            models.Index(fields=["account_id", "-at", "-id"], name="audit_account_idx"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_email or '-'} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("the audit log is append-only: entries cannot be changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("the audit log is append-only: entries cannot be deleted")
