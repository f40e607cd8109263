"""The API's routes. Every path answers with and without its trailing slash (api-contract.md)."""

from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mlaccounts.api import audit, desk, notifications, reconnect, sales, views, workspaces

app_name = "api"

# Anything but a slash: a malformed id still reaches the selector, which answers 404.
ID = r"(?P<id>[^/]+)"

urlpatterns = [
    re_path(r"^auth/register/?$", views.RegisterView.as_view(), name="register"),
    re_path(r"^auth/login/?$", views.LoginView.as_view(), name="login"),
    re_path(r"^auth/logout/?$", views.LogoutView.as_view(), name="logout"),
    re_path(r"^auth/me/?$", views.MeView.as_view(), name="me"),
    re_path(r"^ml-accounts/?$", views.MLAccountListView.as_view(), name="mlaccount-list"),
    # Before the :id routes, so that "sync-all" is never taken for an id.
    re_path(r"^ml-accounts/sync-all/?$", views.MLAccountSyncAllView.as_view(), name="mlaccount-sync-all"),
    re_path(rf"^ml-accounts/{ID}/?$", views.MLAccountDetailView.as_view(), name="mlaccount-detail"),
    re_path(rf"^ml-accounts/{ID}/sync/?$", views.MLAccountSyncView.as_view(), name="mlaccount-sync"),
    re_path(rf"^ml-accounts/{ID}/pause/?$", views.MLAccountPauseView.as_view(), name="mlaccount-pause"),
    re_path(rf"^ml-accounts/{ID}/resume/?$", views.MLAccountResumeView.as_view(), name="mlaccount-resume"),
    re_path(
        rf"^ml-accounts/{ID}/refresh-token/?$",
        views.MLAccountRefreshTokenView.as_view(),
        name="mlaccount-refresh-token",
    ),
    re_path(
        rf"^ml-accounts/{ID}/token-info/?$",
        views.MLAccountTokenInfoView.as_view(),
        name="mlaccount-token-info",
    ),
    re_path(rf"^ml-accounts/{ID}/metrics/?$", sales.AccountMetricsView.as_view(), name="mlaccount-metrics"),
    re_path(
        rf"^ml-accounts/{ID}/reconnect-link/?$",
        reconnect.MLAccountReconnectLinkView.as_view(),
        name="mlaccount-reconnect-link",
    ),
    re_path(r"^metrics/summary/?$", sales.MetricsSummaryView.as_view(), name="metrics-summary"),
    re_path(rf"^sync-jobs/{ID}/?$", views.SyncJobView.as_view(), name="sync-job"),
    re_path(r"^workspaces/?$", workspaces.WorkspaceListView.as_view(), name="workspace-list"),
    re_path(rf"^workspaces/{ID}/?$", workspaces.WorkspaceDetailView.as_view(), name="workspace-detail"),
    re_path(rf"^workspaces/{ID}/members/?$", workspaces.MemberListView.as_view(), name="member-list"),
    re_path(
        rf"^workspaces/{ID}/members/(?P<userId>[^/]+)/?$",
        workspaces.MemberDetailView.as_view(),
        name="member-detail",
    ),
    re_path(
        rf"^workspaces/{ID}/invitations/?$", workspaces.InvitationListView.as_view(), name="invitation-list"
    ),
    re_path(
        rf"^workspaces/{ID}/invitations/(?P<invitationId>[^/]+)/?$",
        workspaces.InvitationDetailView.as_view(),
        name="invitation-detail",
    ),
    re_path(
        r"^invitations/(?P<token>[^/]+)/accept/?$",
        workspaces.InvitationAcceptView.as_view(),
        name="invitation-accept",
    ),
    re_path(
        r"^notifications/health/?$",
        notifications.NotificationHealthView.as_view(),
        name="notification-health",
    ),
    re_path(r"^questions/?$", desk.QuestionListView.as_view(), name="question-list"),
    re_path(rf"^questions/{ID}/answer/?$", desk.QuestionAnswerView.as_view(), name="question-answer"),
    re_path(r"^claims/?$", desk.ClaimListView.as_view(), name="claim-list"),
    re_path(r"^audit/?$", audit.AuditListView.as_view(), name="audit-list"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # Last: every other /api/ path answers 404 in the envelope, not Django's HTML page.
    re_path(r"^.*$", views.NotFoundView.as_view(), name="not-found"),
]
