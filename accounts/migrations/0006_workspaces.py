"""Workspaces own Mercado Livre accounts (issue 11), first step: the new tables, then data.

Every user gets a personal workspace with an owner membership, and every account moves
into its owner's personal workspace with nothing else touched (history, counts, tokens,
primary flag). A seller connected by several users (Mercado Livre keeps one live grant per
application and seller, so all but the newest pair are dead) is resolved: the row with the
newest token pair stays, the other users become managers of the workspace that keeps it,
the other rows' error history moves to it, and the migration prints what it did. 0007 then
drops `owner` and makes `ml_user_id` unique.
"""

import django.db.models.deletion
import uuid
from django.conf import settings
from datetime import UTC, datetime

from django.db import migrations, models


EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _display_name(user):
    return (f"{user.first_name} {user.last_name}".strip() or user.email)[:100]


def to_workspaces(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Workspace = apps.get_model("accounts", "Workspace")
    Membership = apps.get_model("accounts", "Membership")
    MLAccount = apps.get_model("accounts", "MLAccount")
    AccountEvent = apps.get_model("accounts", "AccountEvent")
    db = schema_editor.connection.alias

    personal = {}
    for user in User.objects.using(db).order_by("pk"):
        workspace = Workspace.objects.using(db).create(name=_display_name(user), personal_for=user)
        Membership.objects.using(db).create(workspace=workspace, user=user, role="owner")
        User.objects.using(db).filter(pk=user.pk).update(current_workspace=workspace)
        personal[user.pk] = workspace
    for user_id, workspace in personal.items():
        MLAccount.objects.using(db).filter(owner_id=user_id).update(workspace=workspace, connected_by_id=user_id)

    duplicated = (
        MLAccount.objects.using(db)
        .values("ml_user_id")
        .annotate(n=models.Count("id"))
        .filter(n__gt=1)
        .values_list("ml_user_id", flat=True)
    )
    for ml_user_id in sorted(duplicated):
        rows = list(MLAccount.objects.using(db).filter(ml_user_id=ml_user_id))
        # The newest pair is the only one Mercado Livre still honours (mercadolivre-api.md §1.5).
        rows.sort(
            key=lambda row: (
                max(row.last_token_refresh or EPOCH, row.token_obtained_at or EPOCH),
                row.updated_at,
            ),
            reverse=True,
        )
        keep, *others = rows
        for other in others:
            _, created = Membership.objects.using(db).get_or_create(
                workspace_id=keep.workspace_id, user_id=other.owner_id, defaults={"role": "manager"}
            )
            moved = AccountEvent.objects.using(db).filter(account_id=other.pk).update(account_id=keep.pk)
            was_primary = other.is_primary
            other_workspace = other.workspace_id
            other_id = other.pk
            other.delete()
            if was_primary:
                successor = (
                    MLAccount.objects.using(db).filter(workspace_id=other_workspace).order_by("created_at").first()
                )
                if successor is not None:
                    MLAccount.objects.using(db).filter(pk=successor.pk).update(is_primary=True)
            print(
                f"\n  seller {ml_user_id}: kept account {keep.pk} (workspace {keep.workspace_id}); "
                f"removed account {other_id} of user {other.owner_id}, "
                f"{'made them a manager there' if created else 'already a member there'}, "
                f"moved {moved} history entries"
            )




class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_security_canonical_email_token_version'),
    ]

    operations = [
        migrations.AddField(
            model_name='mlaccount',
            name='connected_by',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.CreateModel(
            name='Membership',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('owner', 'Owner'), ('manager', 'Manager'), ('operator', 'Operator'), ('viewer', 'Viewer')], max_length=16, verbose_name='role')),
                ('scoped', models.BooleanField(default=False, verbose_name='limited to chosen accounts')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='member since')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'membership',
                'verbose_name_plural': 'memberships',
                'ordering': ['workspace', 'created_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='MembershipAccount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.mlaccount')),
                ('membership', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='scope', to='accounts.membership')),
            ],
        ),
        migrations.AddField(
            model_name='membership',
            name='accounts',
            field=models.ManyToManyField(blank=True, related_name='+', through='accounts.MembershipAccount', to='accounts.mlaccount', verbose_name='accounts'),
        ),
        migrations.CreateModel(
            name='Workspace',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=100, verbose_name='name')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('personal_for', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='personal_workspace', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'workspace',
                'verbose_name_plural': 'workspaces',
                'ordering': ['name', 'created_at'],
            },
        ),
        migrations.AddField(
            model_name='membership',
            name='workspace',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='accounts.workspace'),
        ),
        migrations.CreateModel(
            name='Invitation',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('email', models.EmailField(max_length=254, verbose_name='email address')),
                ('role', models.CharField(choices=[('owner', 'Owner'), ('manager', 'Manager'), ('operator', 'Operator'), ('viewer', 'Viewer')], max_length=16, verbose_name='role')),
                ('account_ids', models.JSONField(blank=True, null=True, verbose_name='accounts')),
                ('token_hash', models.CharField(editable=False, max_length=64, unique=True)),
                ('created_at', models.DateTimeField(verbose_name='created')),
                ('expires_at', models.DateTimeField(verbose_name='expires')),
                ('accepted_at', models.DateTimeField(blank=True, null=True, verbose_name='accepted')),
                ('revoked_at', models.DateTimeField(blank=True, null=True, verbose_name='revoked')),
                ('accepted_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('invited_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invitations', to='accounts.workspace')),
            ],
            options={
                'verbose_name': 'invitation',
                'verbose_name_plural': 'invitations',
                'ordering': ['-created_at'],
            },
        ),
        migrations.AddField(
            model_name='mlaccount',
            name='workspace',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='ml_accounts', to='accounts.workspace'),
        ),
        migrations.AddField(
            model_name='oauthstate',
            name='workspace',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.workspace'),
        ),
        migrations.AddField(
            model_name='user',
            name='current_workspace',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.workspace'),
        ),
        migrations.AddIndex(
            model_name='membershipaccount',
            index=models.Index(fields=['account'], name='membershipaccount_account_idx'),
        ),
        migrations.AddConstraint(
            model_name='membershipaccount',
            constraint=models.UniqueConstraint(fields=('membership', 'account'), name='membershipaccount_unique'),
        ),
        migrations.AddIndex(
            model_name='membership',
            index=models.Index(fields=['user', 'workspace'], name='membership_user_idx'),
        ),
        migrations.AddConstraint(
            model_name='membership',
            constraint=models.UniqueConstraint(fields=('workspace', 'user'), name='membership_workspace_user_unique'),
        ),
        migrations.AddConstraint(
            model_name='membership',
            constraint=models.CheckConstraint(condition=models.Q(('role__in', ['owner', 'manager', 'operator', 'viewer'])), name='membership_role_valid'),
        ),
        migrations.AddConstraint(
            model_name='membership',
            constraint=models.CheckConstraint(condition=models.Q(('role', 'owner'), ('scoped', True), _negated=True), name='membership_owner_never_scoped'),
        ),
        migrations.AddIndex(
            model_name='invitation',
            index=models.Index(fields=['workspace', '-created_at'], name='invitation_workspace_idx'),
        ),
        migrations.AddConstraint(
            model_name='invitation',
            constraint=models.CheckConstraint(condition=models.Q(('role__in', ['owner', 'manager', 'operator', 'viewer'])), name='invitation_role_valid'),
        ),
        migrations.RunPython(to_workspaces, migrations.RunPython.noop, elidable=False),
    ]
