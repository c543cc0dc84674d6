"""The `carepath` command as an operator runs it: from any directory, with one clear line for every error."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from importlib import metadata
from pathlib import Path

import pytest

from pathways.definition import SHIPPED_1_1

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CAREPATH = str(Path(sys.executable).parent / "carepath")
MAKE_RUN_DATABASE = f"sqlite:///{ROOT / 'var' / 'carepath.db'}"  # `make run` is `carepath run` in the checkout


def embedded_env(**extra: str) -> dict[str, str]:
    """Nothing configured: no data folder, database, broker or EHR, as on a new machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREPATH_", "DATABASE_", "REDIS_", "EHR_"))}
    return env | {"LOG_LEVEL": "WARNING"} | extra


def carepath(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [CAREPATH, *args]
    return subprocess.run(command, cwd=cwd, env=env or embedded_env(), capture_output=True, text=True, timeout=120)


def test_a_command_run_from_another_directory_uses_the_database_make_run_uses(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert carepath("migrate", cwd=elsewhere).returncode == 0
    name = f"cwd-check-{uuid.uuid4().hex[:8]}"
    created = carepath("tokens", "create", "--role", "coordinator", "--name", name, cwd=elsewhere)
    assert created.returncode == 0, created.stderr
    try:
        listed = carepath("tokens", "list", cwd=ROOT)  # where `make run` runs
        assert name in listed.stdout
        assert not (elsewhere / "var").exists()  # no stray database beside the command
        for where in (elsewhere, ROOT):
            rows = [line.split() for line in carepath("settings", cwd=where).stdout.splitlines()]
            assert ["DATABASE_URL", "default", MAKE_RUN_DATABASE] in rows
    finally:
        token_id = next(line.split()[0] for line in listed.stdout.splitlines() if name in line)
        carepath("tokens", "revoke", token_id, cwd=elsewhere)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The embedded defaults on a data folder of their own, migrated."""
    env = embedded_env(CAREPATH_DATA_DIR=str(tmp_path_factory.mktemp("cli-data")))
    done = subprocess.run([CAREPATH, "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return env


@pytest.mark.parametrize(
    ("args", "settings", "status", "line"),
    [
        (["nosuch"], {}, 2, "carepath: No such command 'nosuch'. (see `carepath --help`)"),
        (["trace"], {}, 2, "carepath: Missing argument 'PATIENT_ID'. (see `carepath trace --help`)"),
        (["tokens", "create", "--role", "nobody", "--name", "x"], {}, 2, "carepath: Invalid value for '--role'"),
        (["tokens", "revoke", "abc"], {}, 2, "carepath: Invalid value for 'TOKEN_ID'"),
        (["tokens", "revoke", "999999"], {}, 1, "carepath: no token 999999"),
        (["definitions", "publish", "pt-nonresponse", "9.9.9"], {}, 1, "carepath: No version 9.9.9 of pathway"),
        (["definitions", "upload", "/nonexistent.yaml"], {}, 2, "carepath: Invalid value for 'PATH'"),
        (["settings"], {"PORT": "abc"}, 2, "carepath: PORT: 'abc' is not valid; it takes a whole number"),
        (["tokens", "list"], {"CAREPATH_DATA_DIR": "{empty}"}, 1, "carepath: the database has no Carepath tables"),
        (
            ["tokens", "list"],
            {"DATABASE_URL": "postgresql+psycopg://carepath:pw-not-shown@127.0.0.1:1/none"},
            1,
            "carepath: cannot use the database (DATABASE_URL): ",
        ),
    ],
    ids=[
        "unknown-command",
        "missing-argument",
        "bad-choice",
        "not-a-number",
        "unknown-token",
        "unknown-version",
        "missing-file",
        "bad-setting",
        "not-migrated",
        "database-unreachable",
    ],
)
def test_every_error_is_one_clear_line_never_a_traceback(
    migrated: dict[str, str], tmp_path: Path, args: list[str], settings: dict[str, str], status: int, line: str
) -> None:
    env = migrated | {k: v.replace("{empty}", str(tmp_path / "empty")) for k, v in settings.items()}
    done = carepath(*args, cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout) == (status, "")
    (shown,) = done.stderr.splitlines()
    assert shown.startswith(line), shown
    assert "Traceback" not in done.stderr and "pw-not-shown" not in done.stderr


def test_definitions_upload_prints_each_problem_on_its_own_line_with_the_files_line(
    migrated: dict[str, str], tmp_path: Path
) -> None:
    text = SHIPPED_1_1.read_text(encoding="utf-8")
    text = text.replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1).replace("\nurl:", "\nlink:", 1)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    at = {fragment: 1 + next(i for i, x in enumerate(lines) if x.startswith(fragment)) for fragment in ("link:",)}
    pct = 1 + next(i for i, x in enumerate(lines) if "min_adherence_pct: 180" in x)

    done = carepath("definitions", "upload", str(broken), cwd=tmp_path, env=migrated)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"carepath: {broken}: The definition is invalid; nothing was stored.",
        f"{broken}:{at['link:']}: link: unknown key",
        f"{broken}: url: missing",
        f"{broken}:{pct}: steps.adherence.min_adherence_pct: must be between 0 and 100",
    ]


def test_version_and_settings_say_what_is_installed_and_in_effect(migrated: dict[str, str], tmp_path: Path) -> None:
    version = carepath("--version", cwd=tmp_path, env=migrated)
    assert (version.returncode, version.stdout) == (0, f"carepath {metadata.version('carepath')}\n")
    table = carepath("settings", cwd=tmp_path, env=migrated | {"EHR_TOKEN": "not-to-be-printed"})
    header, rule, *rows = table.stdout.splitlines()
    assert header.split() == ["Variable", "From", "Value"] and set(rule) <= {"-", " "}
    assert any(row.split()[:2] == ["EHR_TOKEN", "environment"] and "(set, hidden)" in row for row in rows)
    assert "not-to-be-printed" not in table.stdout
