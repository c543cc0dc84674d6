"""The documents operators rely on agree with the code: compose, README, CI, settings."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from service.cli import main as carepath_cli
from service.settings import Settings, settings_table_markdown, variable_names

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_api_worker_beat_migrate_postgres_and_redis_with_health_checks() -> None:
    services = compose()["services"]
    assert {"api", "worker", "beat", "migrate", "postgres", "redis"} <= set(services)
    for name in ("api", "worker", "beat", "postgres", "redis"):
        assert "healthcheck" in services[name], name


def test_every_compose_command_is_a_carepath_cli_command() -> None:
    services = compose()["services"]
    for name in ("api", "worker", "beat", "migrate"):
        command = services[name]["command"]
        assert command[0] == "carepath", name
        assert command[1] in carepath_cli.commands, f"{name}: {command[1]} is not a carepath command"
    assert {"serve", "worker", "beat", "migrate", "simulate", "run"} <= set(carepath_cli.commands)


def test_compose_publishes_only_the_proxy_and_mounts_the_shipped_nginx_config() -> None:
    services = compose()["services"]
    assert [name for name, service in services.items() if "ports" in service] == ["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in services["proxy"]["volumes"]
    assert "healthcheck" in services["proxy"]


def test_nginx_accepts_the_same_largest_body_as_the_app() -> None:
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    size = re.search(r"^\s*client_max_body_size (\d+)m;", config, re.M)
    assert size is not None and int(size.group(1)) * 1024 * 1024 == Settings.from_env({}).max_body_bytes


def test_compose_points_carepath_at_postgres_and_redis() -> None:
    environment = compose()["services"]["api"]["environment"]
    assert environment["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert environment["REDIS_URL"].startswith("redis://")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    test_command = re.search(r"^(make \w+)\s+# installs everything", readme, re.M)
    assert test_command is not None
    ci_commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert ci_commands == [test_command.group(1)]


def test_readme_settings_table_is_the_one_the_code_reads() -> None:
    assert settings_table_markdown() in (ROOT / "README.md").read_text()


def test_settings_default_to_embedded_sqlite_and_broker_with_no_ehr() -> None:
    settings = Settings.from_env({"CAREPATH_DATA_DIR": "/tmp/cp"})
    assert settings.database_url == "sqlite:////tmp/cp/carepath.db"
    assert settings.broker_url == "sqla+sqlite:////tmp/cp/broker.db"
    assert settings.uses_embedded_broker
    assert not settings.ehr_configured
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_settings_read_every_documented_variable_and_hide_the_ehr_token() -> None:
    environ = {
        "DATABASE_URL": "postgresql+psycopg://db/x",
        "REDIS_URL": "redis://r:6379/0",
        "PORT": "9000",
        "EHR_BASE_URL": "https://ehr.example/fhir/",
        "EHR_TOKEN": "s3cret",
        "MAX_BODY_BYTES": "10",
    }
    settings = Settings.from_env(environ)
    assert settings.broker_url == "redis://r:6379/0"
    assert settings.ehr_base_url == "https://ehr.example/fhir"
    assert (settings.port, settings.max_body_bytes) == (9000, 10)
    assert "s3cret" not in repr(settings)
    assert variable_names() >= set(environ)


def test_every_long_running_compose_service_comes_back_by_itself() -> None:
    services = compose()["services"]
    one_shot = {"migrate"}
    for name, service in services.items():
        if name not in one_shot:
            assert service.get("restart") in ("always", "unless-stopped", "on-failure"), name
