"""The Mercado Livre API client (docs/mercadolivre-api.md).

A leaf package: it imports no models and nothing from ``sync`` or ``mlaccounts``, only
``django.conf.settings`` and ``gettext_lazy`` (the country names). ``http.request_json`` is
the one way out to ML; ``oauth`` handles authorization and tokens, ``resources`` the
endpoints the app reads, ``ratelimit`` the app-wide request budget and ``errors`` the typed
failures callers classify.
"""
