"""Dashboard pages of the audit log: a workspace's log (filtered, 50 a page) and its CSV.

Owners and managers only (accounts.selectors.audit): a member below manager gets a 403, a
non-member a 404. A manager limited to chosen accounts sees those accounts' entries.
"""

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts import selectors
from accounts.roles import Can
from mlaccounts import audit_page
from mlaccounts.views.accounts import dashboard_login_required


def _log(request, workspace_id):
    """The workspace (access helper, manager and up), its filter form and the entries it selects."""
    workspace = selectors.workspace_get_for_user(user=request.user, workspace_id=workspace_id, need=Can.AUDIT)
    accounts = selectors.mlaccount_list_for_user(user=request.user, workspace=workspace).only(
        "id", "account_name", "nickname"
    )
    form = audit_page.AuditFilterForm(request.GET, accounts=accounts)
    entries = selectors.audit_entries_for_workspace(user=request.user, workspace=workspace, **form.filters())
    return workspace, form, entries


@require_GET
@dashboard_login_required
def audit(request, workspace_id):
    """Who did what in the workspace, newest first: filters, 50 a page, a CSV of the same."""
    workspace, form, entries = _log(request, workspace_id)
    page = Paginator(entries, selectors.AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.lines = audit_page.describe(entry.changes)
    links = {
        "prev": f"?{form.params(page=page.previous_page_number())}" if page.has_previous() else "",
        "next": f"?{form.params(page=page.next_page_number())}" if page.has_next() else "",
    }
    context = {
        "workspace": workspace,
        "form": form,
        "page": page,
        "entries": page.object_list,
        "links": links,
        "query": form.params(),
        "filtered": bool(form.params()),
    }
    return render(request, "workspaces/audit.html", context, status=400 if form.errors else 200)


@require_GET
@dashboard_login_required
def audit_csv(request, workspace_id):
    """The entries the same filters select, every one of them, as CSV (streamed)."""
    workspace, _form, entries = _log(request, workspace_id)
    response = StreamingHttpResponse(
        audit_page.csv_lines(entries.iterator(chunk_size=500)), content_type="text/csv; charset=utf-8"
    )
    day = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="audit-{workspace.pk}-{day}.csv"'
    return response
