"""Tests of the ML client (accounts/mercadolivre), with ML mocked at the HTTP boundary."""

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ml"
API = "https://api.mercadolibre.com"


def load_fixture(name: str) -> dict:
    """Return a JSON shape copied from mercadolivre-api.md (tests/fixtures/ml/<name>.json)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def ml_error(name: str) -> dict:
    """Return one of the documented ML error bodies from tests/fixtures/ml/errors.json."""
    return load_fixture("errors")[name]
