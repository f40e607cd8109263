from django.conf import settings
from django.utils.functional import cached_property

CONSOLE_EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"


def sandbox(request):
    """Tell every template whether the app talks to the bundled sandbox, and whether emails
    are only printed to the console (no EMAIL_URL: `make run`)."""
    return {
        "ML_SANDBOX": settings.ML_SANDBOX,
        "EMAIL_TO_CONSOLE": settings.EMAIL_BACKEND == CONSOLE_EMAIL_BACKEND,
    }


class WorkspaceNav:
    """The header's workspace switcher, read only if a template shows it (signed in)."""

    def __init__(self, request):
        self.request = request

    @cached_property
    def current(self):
        from mlaccounts.views.accounts import current_workspace

        return current_workspace(self.request)

    @cached_property
    def all(self):
        from mlaccounts.views.accounts import user_workspaces

        return user_workspaces(self.request)


def workspaces(request):
    """`workspace_nav.current` and `workspace_nav.all` for the header's switcher."""
    return {"workspace_nav": WorkspaceNav(request)}
