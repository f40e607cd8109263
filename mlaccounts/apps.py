from django.apps import AppConfig


class MLAccountsConfig(AppConfig):
    name = "mlaccounts"
    verbose_name = "ML Accounts"
