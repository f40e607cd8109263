"""docs/grafana/ml-accounts.json: a dashboard Grafana imports, querying only what /metrics exports."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db

DASHBOARD = Path(settings.BASE_DIR) / "docs" / "grafana" / "ml-accounts.json"
TOKEN = "grafana-test-token-0123456789"
METRIC = re.compile(r"\bmlaccounts_[a-z0-9_]+\b")
# The series each kind of family exposes in the text format.
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _queries(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _exported(client, settings) -> set[str]:
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_every_metric_the_dashboard_queries_is_exported(client, settings):
    queried = {name for query in _queries(_dashboard()) for name in METRIC.findall(query)}
    exported = _exported(client, settings)

    assert queried, "the dashboard queries nothing"
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"


def test_every_exported_family_has_a_panel(client, settings):
    queried = {name for query in _queries(_dashboard()) for name in METRIC.findall(query)}
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in _exported(client, settings)}

    assert not {family for family in families if family.startswith("mlaccounts_")} - {
        re.sub(r"_(total|bucket|count|sum)$", "", name) for name in queried
    }


def test_the_dashboard_is_one_grafana_imports():
    dashboard = _dashboard()

    assert dashboard["schemaVersion"] >= 36 and dashboard["title"] and dashboard["uid"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert (
            set(panel["gridPos"]) == {"h", "w", "x", "y"}
            and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        )
        assert panel["targets"] and all(target["refId"] for target in panel["targets"])


def test_rates_and_quantiles_are_taken_the_prometheus_way():
    queries = _queries(_dashboard())

    # A counter is read through rate() or increase(), never as a raw total.
    for query in queries:
        for counter in re.findall(r"\bmlaccounts_[a-z0-9_]+_(?:total|bucket)\b", query):
            assert re.search(rf"(rate|increase)\({re.escape(counter)}[{{\[]", query), query
    assert any(
        q.startswith("histogram_quantile(0.95") and "notification_lag_seconds_bucket" in q for q in queries
    )
