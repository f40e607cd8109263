from django.conf import settings


def sandbox(request):
    """Tell every template whether the app talks to the bundled sandbox."""
    return {"ML_SANDBOX": settings.ML_SANDBOX}
