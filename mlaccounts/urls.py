from django.contrib import admin
from django.urls import include, path, re_path

from accounts.mercadolivre.sandbox import CALLBACK_PATH
from mlaccounts import metrics, views
from mlaccounts.views.webhooks import mercadolivre_notification

dashboard_patterns = (
    [
        path("", views.overview, name="overview"),
        path("ml-accounts/list/", views.overview_list, name="overview_list"),
        path("ml-accounts/sync-all/", views.sync_all, name="sync_all"),
        path("ml-accounts/bulk/", views.bulk_action, name="bulk"),
        path("ml-accounts/new/", views.connect_new, name="connect_new"),
        path("ml-accounts/connect/", views.connect, name="connect"),
        path(CALLBACK_PATH.removeprefix("/"), views.connect_callback, name="connect_callback"),
        path("ml-accounts/<uuid:account_id>/", views.account_detail, name="account"),
        path("ml-accounts/<uuid:account_id>/sync/", views.account_sync, name="account_sync"),
        path("ml-accounts/<uuid:account_id>/pause/", views.account_pause, name="account_pause"),
        path("ml-accounts/<uuid:account_id>/resume/", views.account_resume, name="account_resume"),
        path("ml-accounts/<uuid:account_id>/primary/", views.account_make_primary, name="account_primary"),
        path("ml-accounts/<uuid:account_id>/renew-token/", views.account_renew_token, name="account_renew"),
        path("ml-accounts/<uuid:account_id>/remove/", views.account_remove, name="account_remove"),
        path(
            "ml-accounts/<uuid:account_id>/reconnect-link/",
            views.account_reconnect_link,
            name="account_reconnect_link",
        ),
        # Public: a store's owner restores its grant with a link a manager sent (no login).
        path("reconnect/<str:token>/", views.reconnect, name="reconnect"),
        path("questions/", views.questions, name="questions"),
        path("questions/<str:question_id>/answer/", views.question_answer, name="question_answer"),
        path("claims/", views.claims, name="claims"),
        path("sales/", views.sales, name="sales"),
        path("alerts/", views.alerts, name="alerts"),
        path("alerts/read/", views.alerts_read, name="alerts_read"),
        path("alerts/settings/", views.alert_settings, name="alert_settings"),
        path("workspaces/<uuid:workspace_id>/desk/", views.desk_settings, name="desk_settings"),
        path(
            "workspaces/<uuid:workspace_id>/desk/replies/<str:reply_id>/",
            views.saved_reply_edit,
            name="saved_reply_edit",
        ),
        path("workspaces/switch/", views.workspace_switch, name="workspace_switch"),
        path("workspaces/new/", views.workspace_new, name="workspace_new"),
        path("workspaces/<uuid:workspace_id>/members/", views.members, name="members"),
        path("workspaces/<uuid:workspace_id>/audit/", views.audit, name="audit"),
        path("workspaces/<uuid:workspace_id>/audit.csv", views.audit_csv, name="audit_csv"),
        path("workspaces/<uuid:workspace_id>/invite/", views.invite, name="invite"),
        path("workspaces/<uuid:workspace_id>/rename/", views.workspace_rename, name="workspace_rename"),
        path("workspaces/<uuid:workspace_id>/delete/", views.workspace_delete, name="workspace_delete"),
        path(
            "workspaces/<uuid:workspace_id>/members/<int:user_id>/", views.member_update, name="member_update"
        ),
        path(
            "workspaces/<uuid:workspace_id>/members/<int:user_id>/remove/",
            views.member_remove,
            name="member_remove",
        ),
        path(
            "workspaces/<uuid:workspace_id>/invitations/<uuid:invitation_id>/revoke/",
            views.invitation_revoke,
            name="invitation_revoke",
        ),
        path("invitations/<str:token>/", views.invitation, name="invitation"),
        path(
            "invitations/<str:token>/switch-user/",
            views.invitation_switch_user,
            name="invitation_switch_user",
        ),
    ],
    "dashboard",
)

urlpatterns = [
    path("", include(dashboard_patterns)),
    path("health/", views.health, name="health"),
    # Prometheus's scrape: a bearer token (METRICS_TOKEN), no login, no session.
    re_path(r"^metrics/?$", metrics.metrics, name="metrics"),
    # ML posts to the URL exactly as registered in the DevCenter: with or without the slash.
    re_path(
        r"^webhooks/mercadolivre/(?P<secret>[^/]{1,200})/?$",
        mercadolivre_notification,
        name="ml_webhook",
    ),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", include("mlaccounts.api.urls")),
]
