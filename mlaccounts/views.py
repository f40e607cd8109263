"""Dashboard pages: thin views that call accounts.selectors and accounts.services."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from accounts import selectors


@login_required
def overview(request):
    accounts = selectors.mlaccount_list_for_user(user=request.user)
    return render(request, "mlaccounts/overview.html", {"accounts": accounts})


def health(request):
    """Liveness for load balancers: the process answers and the database is reachable."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
