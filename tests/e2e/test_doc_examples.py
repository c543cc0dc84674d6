"""The examples in docs/examples/ do what their descriptions say, through `carepath simulate` as a user runs it.

Each journey `NAME.json` has a description `NAME.md` whose `expect:` block lists runs: the
instant (`now`), optionally a definition, and either the steps that fire or the exit status and
the one error line. Each step that fires is stated with its day and the codes of its Tasks and
ServiceRequests, and optionally their `priority`, their `reasons` (reasonCode codes) and what
their texts `says`; a withdrawn one with the reason it was `withdrawn`. A run's `trace` lists
lines `--trace` shows, in order (next checkpoints, attributions, holds). Each definition
`NAME.yaml` states its expected outcome in its header comment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathways.definition import SHIPPED_1_1, load_definition_file
from pathways.model import PATHWAY_STEP_SYSTEM
from tests.processes import start_api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
JOURNEYS = sorted(EXAMPLES.glob("*.json"))
MDT_DEFINITION = EXAMPLES / "pt-nonresponse-mdt.yaml"
EXPECT_BLOCK = re.compile(r"```yaml\n(expect:.*?)```", re.DOTALL)
EXAMPLES_README = EXAMPLES / "README.md"
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)
SHOWN_BASE = "http://127.0.0.1:8000"  # `make run`'s address, as the examples show it


def expectations(journey: Path) -> list[dict[str, Any]]:
    """The runs the journey's description expects, read from its `expect:` block."""
    blocks = EXPECT_BLOCK.findall(journey.with_suffix(".md").read_text(encoding="utf-8"))
    assert len(blocks) == 1, f"{journey.with_suffix('.md').name}: needs exactly one ```yaml expect: block"
    runs: list[dict[str, Any]] = yaml.safe_load(blocks[0])["expect"]
    return runs


def text(value: object) -> str:
    """YAML reads instants, dates and numeric codes as such; compare them as written."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def simulate(journey: Path, run: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "service.cli", "simulate", str(journey), "--now", text(run["now"])]
    if "definition" in run:
        command += ["--definition", str(ROOT / run["definition"])]
    if "trace" in run:
        command.append("--trace")
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def fired(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Each decision in the Bundle: its step and day, every code, priority and reason code of its Tasks and
    ServiceRequests, their texts, and why it was withdrawn (None while it stands)."""
    decisions: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        if resource["resourceType"] in ("Task", "ServiceRequest"):
            step = next(t["code"] for t in resource["meta"]["tag"] if t["system"] == PATHWAY_STEP_SYSTEM)
            decisions.setdefault((resource["authoredOn"], step), []).append(resource)
    return [
        {"step": step, "date": authored[:10], **made_of(resources)}
        for (authored, step), resources in sorted(decisions.items())
    ]


def made_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    priorities = sorted({r["priority"] for r in resources})
    reasons = [c["code"] for r in resources for concept in r.get("reasonCode", []) for c in concept["coding"]]
    texts = [r["code"].get("text", "") for r in resources] + [r.get("description", "") for r in resources]
    texts += [note["text"] for r in resources for note in r.get("note", [])]
    withdrawn = [r.get("statusReason", {}).get("text", r["status"]) for r in resources if r["status"] == "cancelled"]
    return {
        "codes": sorted({coding["code"] for r in resources for coding in r["code"]["coding"]}),
        "priority": priorities[0] if len(priorities) == 1 else priorities,
        "reasons": sorted(set(reasons)),
        "text": "\n".join(texts),
        "withdrawn": withdrawn[0] if withdrawn else None,
    }


def stated(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The decisions a run states, each with the keys it names; one it does not say is withdrawn stands."""
    decisions = []
    for d in run["fired"]:
        decision = {"step": d["step"], "date": text(d["date"]), "codes": sorted(text(c) for c in d["codes"])}
        decision |= {key: d[key] for key in ("priority", "says") if key in d}
        decision |= {"reasons": sorted(text(c) for c in d["reasons"])} if "reasons" in d else {}
        decisions.append(decision | {"withdrawn": d.get("withdrawn")})
    return decisions


def as_stated(decision: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The decision with only the keys its expectation names; `says` keeps the phrases its texts hold."""
    shown = {key: decision[key] for key in expected if key != "says"}
    if "says" in expected:
        shown["says"] = [phrase for phrase in expected["says"] if phrase in decision["text"]]
    return shown


def traced_in_order(trace: str, lines: list[str]) -> list[str]:
    """The lines found in the trace one after the other; the first one missing ends the list."""
    found, position = [], 0
    for line in lines:
        position = trace.find(line, position)
        if position < 0:
            break
        found.append(line)
    return found


def test_every_example_has_a_description_stating_its_expected_outcome() -> None:
    assert JOURNEYS and MDT_DEFINITION.exists()
    for path in sorted(EXAMPLES.iterdir()):
        if path.suffix == ".json":
            assert expectations(path), f"{path.name}: its description expects nothing"
        elif path.name == "README.md":
            continue
        elif path.suffix == ".md":
            assert path.with_suffix(".json").exists(), f"{path.name} describes no journey"
        elif path.suffix == ".yaml":
            header = "".join(line for line in path.read_text(encoding="utf-8").splitlines(True) if line.startswith("#"))
            assert "Expected outcome:" in header, f"{path.name}: its header comment states no expected outcome"
        else:
            pytest.fail(f"{path.name}: an example must be a journey (.json with its .md) or a definition (.yaml)")


CASES = [(journey, run) for journey in JOURNEYS for run in expectations(journey)]


@pytest.mark.parametrize(
    ("journey", "run"),
    CASES,
    ids=[f"{journey.stem}-{index}" for index, (journey, _) in enumerate(CASES)],
)
def test_simulate_gives_the_outcome_each_example_states(journey: Path, run: dict[str, Any]) -> None:
    done = simulate(journey, run)
    if "exit" in run:
        assert (done.returncode, done.stdout) == (run["exit"], "")
        assert done.stderr.splitlines() == [run["error"]]
    else:
        assert done.returncode == 0, done.stderr
        decisions, expected = fired(json.loads(done.stdout)), stated(run)
        outline = [{key: d[key] for key in ("step", "date", "codes")} for d in decisions]
        assert outline == [{key: e[key] for key in ("step", "date", "codes")} for e in expected]
        assert [as_stated(d, e) for d, e in zip(decisions, expected, strict=True)] == expected
        trace = [text(line) for line in run.get("trace", [])]
        found = traced_in_order(done.stderr, trace)
        assert found == trace, f"--trace does not show, after {found[-1:]}: {trace[len(found) : len(found) + 1]}"


def test_the_knee_and_shoulder_example_without_the_knee_raises_no_red_flag_task(tmp_path: Path) -> None:
    """As its description says: with the shoulder episode alone open, night pain and weakness are expected signs."""
    bundle = json.loads((EXAMPLES / "knee-and-shoulder.json").read_text(encoding="utf-8"))
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["id"] != "knee-pain"]
    (tmp_path / "shoulder-only.json").write_text(json.dumps(bundle), encoding="utf-8")
    done = simulate(tmp_path / "shoulder-only.json", {"now": "2026-06-01T00:00:00Z", "trace": True})
    assert done.returncode == 0, done.stderr
    assert [d["step"] for d in fired(json.loads(done.stdout)) if d["step"] == "red-flags"] == []
    for sign in ("night pain (2026-03-20", "muscle weakness (2026-03-27"):
        assert f"{sign}; an expected sign of subacromial / rotator-cuff-related pain)" in done.stderr


def without_mdt(data: dict[str, Any]) -> dict[str, Any]:
    data["checkpoint_rows"] = [row for row in data["checkpoint_rows"] if row["step"] != "mdt"]
    del data["steps"]["mdt"]
    data["version"] = "1.1.0"
    return data


def test_the_mdt_example_is_the_shipped_1_1_0_plus_its_authored_step() -> None:
    """When the shipped definition changes, the example must follow it (apply the same change there)."""
    example = yaml.safe_load(MDT_DEFINITION.read_text(encoding="utf-8"))
    assert without_mdt(example) == yaml.safe_load(SHIPPED_1_1.read_text(encoding="utf-8"))
    rows = load_definition_file(MDT_DEFINITION).checkpoint_rows
    assert rows[rows.index("reassessment") + 1 : rows.index("imaging")] == ("mdt",)


def test_a_broken_definition_is_refused_with_exit_2_and_one_line_naming_each_exact_path(tmp_path: Path) -> None:
    broken = MDT_DEFINITION.read_text(encoding="utf-8")
    broken = broken.replace("{not: neurological}", "{not: neurologic}", 1)
    broken = broken.replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    (tmp_path / "broken.yaml").write_text(broken, encoding="utf-8")
    done = simulate(EXAMPLES / "mdt-candidate.json", {"now": "2026-04-20", "definition": tmp_path / "broken.yaml"})
    assert (done.returncode, done.stdout) == (2, "")
    (line,) = done.stderr.splitlines()
    assert line.startswith("simulate: invalid definition: ")
    assert "steps.adherence.min_adherence_pct: must be between 0 and 100" in line
    assert "checkpoint_rows[3].when.all[2].not: unknown predicate 'neurologic'" in line


@pytest.mark.parametrize(
    ("arguments", "line"),
    [
        (["--now", "next tuesday"], "simulate: --now must be an ISO 8601 date-time, not 'next tuesday'"),
        (
            ["--now", "2026-04-20", "--definition", "/nonexistent.yaml"],
            "simulate: invalid definition: /nonexistent.yaml",
        ),
    ],
    ids=["bad-date", "missing-definition"],
)
def test_bad_arguments_exit_2_with_one_clear_line(arguments: list[str], line: str) -> None:
    command = [sys.executable, "-m", "service.cli", "simulate", str(EXAMPLES / "mdt-candidate.json"), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert (done.returncode, done.stdout) == (2, "")
    (shown,) = done.stderr.splitlines()
    assert shown.startswith(line)


def shown_commands() -> list[str]:
    """Each command the examples' README shows, continuation lines joined, comments left out."""
    commands = []
    for block in BASH_BLOCK.findall(EXAMPLES_README.read_text(encoding="utf-8")):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.lstrip().startswith("#"):
                commands.append(" ".join(command.split()))
    return commands


def test_every_file_in_docs_examples_is_described_in_its_readme_which_the_readme_names() -> None:
    described = EXAMPLES_README.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([^`]+)` \|", described, re.MULTILINE))
    files = {path.name for path in EXAMPLES.iterdir()} - {"README.md"}
    assert files == rows, f"described but missing: {rows - files}; not described: {files - rows}"
    assert "docs/examples/README.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def journey_of(command: str) -> str:
    found = re.search(r"docs/examples/\S+\.json", command)
    assert found, command
    return found.group(0)


def test_each_journey_the_readme_shows_runs_as_shown_with_the_status_its_description_expects() -> None:
    runs = {ROOT / journey_of(c): c for c in shown_commands() if c.startswith("carepath simulate ")}
    assert set(runs) == set(JOURNEYS)
    for journey, run in runs.items():
        arguments = run.split()[1:]
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", *arguments], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        refused = any("exit" in expected for expected in expectations(journey))
        assert done.returncode == (2 if refused else 0), f"{run}: {done.stderr}"


@pytest.fixture()
def embedded(tmp_path: Path) -> dict[str, str]:
    """`make run`'s embedded defaults on a data folder of their own, migrated."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREPATH_", "DATABASE_", "REDIS_", "EHR_"))}
    env |= {"CAREPATH_DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING", "SECRET_KEY": "doc-examples"}
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
    return env


def test_the_definition_posts_to_the_api_as_the_readme_shows_and_uploads_with_the_command(
    embedded: dict[str, str],
) -> None:
    """The `curl` lines run in bash as written, against `carepath serve` on the embedded defaults."""
    api, base = start_api(embedded, name="doc-examples-api")
    try:
        shown = "\n".join(c for c in shown_commands() if not c.startswith("carepath "))
        script = shown.replace(SHOWN_BASE, base).replace("curl -s ", "curl -s -w '\\n%{http_code}' ")
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=embedded, cwd=ROOT, **CAPTURED)
        assert done.returncode == 0, done.stderr
        *body, status = done.stdout.splitlines()
        assert status == "201", done.stdout
        answer = json.loads("\n".join(body))
        assert (answer["version"], answer["status"]) == ("1.1.0-mdt.1", "draft")
    finally:
        api.stop()
    upload = next(c for c in shown_commands() if c.startswith("carepath definitions upload ")).split()[1:]
    again = subprocess.run([sys.executable, "-m", "service.cli", *upload], env=embedded, cwd=ROOT, **CAPTURED)
    assert again.returncode == 1 and "exists; versions are immutable" in again.stderr  # stored once, as it says


CAPTURED: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 120}
