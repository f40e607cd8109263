"""One grant per seller: `ml_user_id` unique in the installation, one primary per workspace."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0007_move_accounts_into_workspaces'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='mlaccount',
            name='mlaccount_owner_ml_user_unique',
        ),
        migrations.RemoveConstraint(
            model_name='mlaccount',
            name='mlaccount_one_primary_per_owner',
        ),
        migrations.RemoveIndex(
            model_name='mlaccount',
            name='mlaccount_owner_list_idx',
        ),
        migrations.RemoveField(
            model_name='mlaccount',
            name='owner',
        ),
        migrations.AlterField(
            model_name='mlaccount',
            name='workspace',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='ml_accounts', to='accounts.workspace'),
        ),
        migrations.AddIndex(
            model_name='mlaccount',
            index=models.Index(fields=['workspace', '-is_primary', 'created_at'], name='mlaccount_workspace_list_idx'),
        ),
        migrations.AddConstraint(
            model_name='mlaccount',
            constraint=models.UniqueConstraint(fields=('ml_user_id',), name='mlaccount_ml_user_unique'),
        ),
        migrations.AddConstraint(
            model_name='mlaccount',
            constraint=models.UniqueConstraint(condition=models.Q(('is_primary', True)), fields=('workspace',), name='mlaccount_one_primary_per_workspace'),
        ),
    ]
