"""Every route of the API is in its OpenAPI document, and everything the document names is served."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from service.app import create_app
from service.settings import Settings

# Documented elsewhere: the FHIR endpoints in the CapabilityStatement (/fhir/metadata); the web UI's pages are
# for browsers, not an API; /static is Flask's own route.
ELSEWHERE = ("/fhir", "/ui/", "/ui", "/static/")
BROWSER = {"/", "/favicon.ico"}  # where a person's browser goes on its own: sent on to the UI
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return create_app(Settings.from_env({"CAREPATH_DATA_DIR": str(tmp_path_factory.mktemp("routes"))}))


def served(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every route, `<kind:name>` written `{name}`."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        found |= {(path, method.lower()) for method in rule.methods or () if method.lower() in METHODS}
    return found


def documented(app: Flask) -> set[tuple[str, str]]:
    spec = app.test_client().get("/openapi.json").get_json()
    return {(path, method) for path, operations in spec["paths"].items() for method in operations if method in METHODS}


def test_every_api_route_is_documented_in_the_openapi_document(app: Flask) -> None:
    api = {(path, method) for path, method in served(app) if not path.startswith(ELSEWHERE) and path not in BROWSER}
    assert ("/notifications", "post") in api
    assert sorted(api - documented(app)) == []


def test_everything_the_openapi_document_names_is_served(app: Flask) -> None:
    assert sorted(documented(app) - served(app)) == []


def test_the_fhir_endpoints_left_to_the_capability_statement_are_there(app: Flask) -> None:
    fhir = {path for path, _ in served(app) if path.startswith("/fhir")}
    assert {"/fhir/metadata", "/fhir/{resource_type}", "/fhir/{resource_type}/{resource_id}"} <= fhir
