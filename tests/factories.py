"""Rows for tests. Tokens are recognisable so leak checks can search for them."""

from datetime import timedelta

import factory
from django.utils import timezone

from accounts import services
from accounts.models import AccountEvent, AuditAction, AuditEntry, Membership, MLAccount, User, Workspace


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Ana"
    last_name = "Souza"
    password = factory.django.Password("correct horse battery staple")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    """A shared (not personal) workspace; give it members with `member()`."""

    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Agency {n}")


def member(workspace, user, role, accounts=None):
    """Make `user` a member of `workspace` with `role`, limited to `accounts` when given."""
    membership = Membership.objects.create(
        workspace=workspace, user=user, role=role, scoped=accounts is not None
    )
    for account in accounts or ():
        membership.scope.create(account=account)
    return membership


class MLAccountFactory(factory.django.DjangoModelFactory):
    """An account in `workspace`, by default the personal workspace of `owner` (a new user)."""

    class Meta:
        model = MLAccount

    class Params:
        owner = factory.SubFactory(UserFactory)

    workspace = factory.LazyAttribute(lambda o: services.workspace_personal(user=o.owner))
    connected_by = factory.LazyAttribute(lambda o: o.owner)
    ml_user_id = factory.Sequence(lambda n: 4_000_000_000 + n)
    nickname = factory.Sequence(lambda n: f"SELLER{n}")
    email = factory.LazyAttribute(lambda o: f"{o.nickname.lower()}@example.com")
    site_id = "MLB"
    account_name = factory.LazyAttribute(lambda o: o.nickname)
    access_token = factory.Sequence(lambda n: f"APP_USR-TESTACCESS-{n:06d}-secretaccess")
    refresh_token = factory.Sequence(lambda n: f"TG-TESTREFRESH-{n:06d}-secretrefresh")
    token_expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=6))
    token_obtained_at = factory.LazyFunction(timezone.now)
    next_sync = factory.LazyFunction(timezone.now)


class AccountEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountEvent

    account = factory.SubFactory(MLAccountFactory)
    kind = AccountEvent.Kind.UNAVAILABLE
    message = "Mercado Livre answered 503"
    http_status = 503


def audit_entry(workspace, account=None, **fields) -> AuditEntry:
    """An audit log entry of `workspace` (about `account`): alice paused it, from Firefox."""
    values = {
        "at": timezone.now(),
        "action": AuditAction.PAUSE,
        "actor_email": "alice@example.com",
        "workspace_id": workspace.pk,
        "workspace_name": workspace.name,
        "account_id": account.pk if account else None,
        "account_label": account.account_name if account else "",
        "ip": "198.51.100.4",
        "user_agent": "Firefox",
        "changes": {"status": ["active", "paused"]},
    }
    return AuditEntry.objects.create(**{**values, **fields})
