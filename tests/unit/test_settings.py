"""Settings are validated once, at start, and a bad value names its variable and what it accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service import settings as settings_module
from service.settings import (
    Settings,
    SettingsError,
    declared,
    default_data_dir,
    settings_table,
    settings_table_markdown,
)


@pytest.mark.parametrize(
    ("variable", "value", "accepts"),
    [
        ("PORT", "abc", "a whole number from 1 to 65535"),
        ("PORT", "70000", "a whole number from 1 to 65535"),
        ("WEB_THREADS", "0", "a whole number from 1 to 256"),
        ("LOG_FORMAT", "xml", "one of `json`, `console`"),
        ("LOG_LEVEL", "LOUD", "one of `DEBUG`"),
        ("EHR_AUTH", "smrt", "one of `none`, `bearer`, `smart`"),
        ("EHR_BASE_URL", "ehr.example/fhir", "a URL starting `http://` or `https://`"),
        ("REDIS_URL", "http://redis:6379", "a URL starting `redis://` or `rediss://`"),
        ("EHR_READ_TIMEOUT", "-1", "a number of seconds above 0"),
        ("TOKEN_CACHE_SECONDS", "nan", "a number of seconds, 0 or more"),
        ("DATABASE_URL", "carepath.db", "an SQLAlchemy URL"),
        ("DEVICE_IDENTIFIER", "carepath", "an identifier `system|value`"),
        ("DEVICE_IDENTIFIER", "urn:x|", "an identifier `system|value`"),
        ("COORDINATOR_PRACTITIONERS", "alice", "comma-separated `name=Type/id` pairs"),
        ("COORDINATOR_PRACTITIONERS", "alice=Dr Alice", "comma-separated `name=Type/id` pairs"),
        ("COORDINATOR_PRACTITIONERS", "alice=Practitioner/1,alice=Practitioner/2", "each name once"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_accepts(
    variable: str, value: str, accepts: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: value})
    assert str(refused.value).startswith(f"{variable}: {value!r} is not valid; it takes ")
    assert accepts in str(refused.value)


def test_secrets_are_never_shown() -> None:
    settings = Settings.from_env({"EHR_TOKEN": "s3cret", "SECRET_KEY": "k3y"})
    assert "s3cret" not in repr(settings) and "k3y" not in repr(settings)


def test_values_are_normalised_as_their_type_says() -> None:
    settings = Settings.from_env(
        {"LOG_FORMAT": "CONSOLE", "LOG_LEVEL": "debug", "EHR_AUTH": " Smart ", "EHR_SCOPES": " a\n b  c "}
    )
    assert (settings.log_format, settings.log_level, settings.ehr_auth) == ("console", "DEBUG", "smart")
    assert settings.ehr_scopes == "a b c"


def test_coordinators_map_to_their_practitioners_in_the_order_given() -> None:
    settings = Settings.from_env({"COORDINATOR_PRACTITIONERS": " alice = Practitioner/p-1 , bob=PractitionerRole/r.2,"})
    assert settings.coordinator_practitioners == (("alice", "Practitioner/p-1"), ("bob", "PractitionerRole/r.2"))
    assert Settings.from_env({}).coordinator_practitioners == ()


def test_the_device_identifier_is_a_token_with_both_parts_trimmed() -> None:
    assert Settings.from_env({"DEVICE_IDENTIFIER": " urn:oid:1.2.3 | cp-7 "}).device_identifier == "urn:oid:1.2.3|cp-7"


def test_empty_values_take_the_default() -> None:
    assert Settings.from_env({"PORT": "  ", "LOG_FORMAT": ""}) == Settings.from_env({})


def test_defaults_in_the_code_are_the_defaults_in_the_readme_table() -> None:
    table = settings_table_markdown()
    defaults = Settings.from_env({"REDIS_URL": "redis://r:6379/0", "SECRET_KEY": "x"})
    assert f"| `PORT` | `{defaults.port}` |" in table
    assert f"| `WEB_THREADS` | `{defaults.web_threads}` |" in table
    assert f"| `LOG_FORMAT` | `{defaults.log_format}` |" in table
    assert "| `REDIS_URL` | `(empty)` |" in table


def test_the_command_line_reports_a_bad_setting_in_one_line_and_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "settings"],
        env={"PORT": "abc", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "carepath: PORT: 'abc' is not valid; it takes a whole number from 1 to 65535."
    assert "Traceback" not in result.stderr


def test_the_embedded_defaults_keep_their_data_in_the_checkouts_var_whatever_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == checkout / "var"
    assert settings.database_url == f"sqlite:///{checkout / 'var' / 'carepath.db'}"
    assert Settings.from_env({"CAREPATH_DATA_DIR": str(tmp_path / "mine")}).data_dir == tmp_path / "mine"


def test_an_installed_package_keeps_its_data_in_the_users_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_module, "_SOURCE_ROOT", tmp_path / "site-packages")
    assert default_data_dir({"XDG_DATA_HOME": str(tmp_path / "data")}) == tmp_path / "data" / "carepath"
    assert default_data_dir({}) == Path.home() / ".local" / "share" / "carepath"


def test_the_settings_table_hides_secrets_and_the_passwords_in_urls() -> None:
    env = {
        "DATABASE_URL": "postgresql+psycopg://carepath:s3cret-pw@db:5432/carepath",
        "EHR_TOKEN": "ehr-token-value",
        "SECRET_KEY": "signing-key-value",
        "ALERT_WEBHOOK_URL": "https://hooks.example/T0/secret-path",
        "PORT": "8001",
    }
    table = settings_table(Settings.from_env(env), env)
    for secret in ("s3cret-pw", "ehr-token-value", "signing-key-value", "secret-path"):
        assert secret not in table
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:]}
    assert rows["DATABASE_URL"] == ["environment", "postgresql+psycopg://carepath:***@db:5432/carepath"]
    assert rows["EHR_TOKEN"] == ["environment", "(set,", "hidden)"]
    assert rows["PORT"] == ["environment", "8001"]
    assert rows["HOST"] == ["default", "127.0.0.1"]
    assert rows["EHR_BASE_URL"] == ["default", "(empty)"]
    assert len(rows) == len(declared())
