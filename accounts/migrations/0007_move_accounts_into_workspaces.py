"""Workspaces own Mercado Livre accounts (issue 11), second step: the data.

Every user gets a personal workspace with an owner membership, and every account moves
into its owner's personal workspace with nothing else touched (history, counts, tokens,
primary flag). A seller connected by several users (Mercado Livre keeps one live grant per
application and seller, so all but the newest pair are dead) is resolved: the row with the
newest token pair stays, the other users become managers of the workspace that keeps it,
the other rows' error history moves to it, and the migration prints what it did.
"""

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
    dependencies = [("accounts", "0006_workspaces")]

    operations = [migrations.RunPython(to_workspaces, migrations.RunPython.noop, elidable=False)]
