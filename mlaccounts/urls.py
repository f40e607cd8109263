from django.contrib import admin
from django.urls import include, path

from mlaccounts import views

dashboard_patterns = (
    [
        path("", views.overview, name="overview"),
        path("ml-accounts/connect/", views.connect, name="connect"),
        path("ml-accounts/connect/callback/", views.connect_callback, name="connect_callback"),
    ],
    "dashboard",
)

urlpatterns = [
    path("", include(dashboard_patterns)),
    path("health/", views.health, name="health"),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
