"""System checks of the accounts app's settings (run by `manage.py check` and at start-up)."""

from django.conf import settings
from django.core.checks import Error, register


@register()
def reputation_limits_check(app_configs, **kwargs):
    """REPUTATION_LIMITS names only levels and metrics the app knows: a typo ("claim") would
    otherwise silently turn its warning off."""
    from accounts import reputation

    table = getattr(settings, "REPUTATION_LIMITS", None) or {}
    errors = []
    for level, metrics in table.items():
        if level not in reputation.LEVELS:
            errors.append(
                Error(
                    f"REPUTATION_LIMITS names an unknown level {level!r}",
                    hint=f"Levels: {', '.join(reputation.LEVELS)}.",
                    id="accounts.E001",
                )
            )
        for metric in metrics:
            if metric not in reputation.METRICS:
                errors.append(
                    Error(
                        f"REPUTATION_LIMITS[{level!r}] names an unknown metric {metric!r}",
                        hint=f"Metrics: {', '.join(reputation.METRICS)}.",
                        id="accounts.E002",
                    )
                )
    return errors
