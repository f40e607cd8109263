"""Workspaces own Mercado Livre accounts (issue 11), first step: the new tables and columns.

0007 moves the data (it must run in a transaction of its own: PostgreSQL refuses to build
this migration's deferred indexes on a table whose rows were changed in the same one), and
0008 drops `owner` and makes `ml_user_id` unique.
"""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


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
    ]
