from django.apps import AppConfig, apps
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def install_missing_jobs(sender, *, using=DEFAULT_DB_ALIAS, verbosity=1, stdout=None, **kwargs):
    """After every `migrate`: create the periodic jobs that do not exist yet.

    So that a deploy that only migrates (no `setup_periodic_tasks`) still syncs. Rows that
    exist are left exactly as they are: an admin's schedule change or off switch survives
    every later migrate (`setup_periodic_tasks` is the command that brings them back in
    line with the code).
    """
    from django_celery_beat.models import PeriodicTask

    from sync import schedule

    # A partial migrate (`migrate accounts`) may run before beat's tables exist.
    if PeriodicTask._meta.db_table not in connections[using].introspection.table_names():
        return
    for name, action in schedule.install(only_missing=True, using=using):
        if action == "created" and verbosity >= 1 and stdout is not None:
            stdout.write(f"  Installed the periodic job {name!r}\n")


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = _("Sync")

    def ready(self):
        # Sent for django_celery_beat (sync has no models, so no signal of its own), once per
        # migrate, after every app's migrations ran.
        post_migrate.connect(
            install_missing_jobs,
            sender=apps.get_app_config("django_celery_beat"),
            dispatch_uid="sync.install_missing_jobs",
        )
