"""Users' and allauth's addresses in their canonical form; a per-user API token version.

Existing rows were stored lower()ed, so look-alikes (`kate@ｓec.test` beside
`kate@sec.test`, `bf@ſec.test` beside `bf@sec.test`) may exist. They are never merged or
dropped here: the migration prints every group of users whose addresses share a
canonical form and stops, naming their ids, for a person to decide which account stays.
"""

from collections import defaultdict

from django.db import migrations, models

from accounts.emails import InvalidEmail, canonical_email


class CanonicalEmailConflict(RuntimeError):
    pass


def _canonical_or_none(email):
    try:
        return canonical_email(email)
    except InvalidEmail:
        return None


def canonicalise_emails(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    db = schema_editor.connection.alias

    users = list(User.objects.using(db).only("pk", "email"))
    groups = defaultdict(list)
    invalid = []
    for user in users:
        canonical = _canonical_or_none(user.email)
        if canonical is None:
            invalid.append(user.pk)
        else:
            groups[canonical].append(user.pk)
    # An allauth address of one user that is the canonical twin of another user's.
    addresses = list(EmailAddress.objects.using(db).only("pk", "user_id", "email", "primary", "verified"))
    address_groups = defaultdict(list)
    for address in addresses:
        canonical = _canonical_or_none(address.email)
        if canonical is None:
            invalid.append(address.user_id)
        else:
            address_groups[canonical].append(address)
    problems = [
        f"  {canonical}: user ids {sorted(ids)}" for canonical, ids in sorted(groups.items()) if len(ids) > 1
    ]
    for canonical, group in sorted(address_groups.items(), key=lambda item: item[0]):
        owners = {address.user_id for address in group} | set(groups.get(canonical, []))
        if len(owners) > 1:
            problems.append(f"  {canonical} (allauth addresses): user ids {sorted(owners)}")
    if invalid:
        problems.append(f"  addresses whose domain IDNA cannot encode: user ids {sorted(set(invalid))}")
    if problems:
        message = (
            "These users' email addresses are the same address in canonical form (or have none); "
            "delete or change all but one of each group, then migrate again:\n" + "\n".join(problems)
        )
        print(message)
        raise CanonicalEmailConflict(message)

    for user in users:
        canonical = canonical_email(user.email)
        if canonical != user.email:
            User.objects.using(db).filter(pk=user.pk).update(email=canonical)
    for canonical, group in address_groups.items():
        # One user's own spellings of one address collapse into one row: the verified and
        # primary one is kept (nothing is lost, they are the same mailbox).
        group.sort(key=lambda address: (not address.verified, not address.primary, address.pk))
        keep, *twins = group
        if twins:
            EmailAddress.objects.using(db).filter(pk__in=[twin.pk for twin in twins]).delete()
            if any(twin.primary for twin in twins):
                EmailAddress.objects.using(db).filter(pk=keep.pk).update(primary=True)
        if keep.email != canonical:
            EmailAddress.objects.using(db).filter(pk=keep.pk).update(email=canonical)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_syncflow_sync_jobs"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="api_token_version",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(canonicalise_emails, migrations.RunPython.noop),
    ]
