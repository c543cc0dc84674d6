"""What fault tests share: starting Carepath's processes, posting events, and reading the truth.

The truth is read from two places and never from a process's own report: Carepath's database
(events, decisions, deliveries and their attempts, the breaker) and the EHR itself.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from pathways.fhir.outbound import PROPOSAL_IDENTIFIER_SYSTEM, key_of, token_criteria
from service.store import patients
from service.store.tables import (
    circuit_breakers,
    decisions,
    deliveries,
    delivery_attempts,
    evaluations,
    inbound_events,
    patient_records,
    proposals,
)
from tests.access import bearer, token_for
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.processes import ARTIFACTS, CarepathProcess, start_api, start_beat, start_worker

# The two EHR resources every major red flag writes besides its ServiceRequest and Provenance.
RED_FLAG_TASKS = Counter({"urgent-red-flag-review": 1, "approve": 1})
LATE_FACT_REPLAY = "replay after the late fact "  # the trigger `service.usecases.replay` records


def red_flag_case(patient: str, start: datetime) -> list[dict[str, Any]]:
    """A finished PT visit, then cauda equina a day later: one stat `red-flags` decision."""
    return [pt_visit(patient, start), finding(patient, CAUDA_EQUINA, start + timedelta(days=1))]


# The `ehr` token of each API a Launcher started, by base URL: events are posted as the EHR would.
API_TOKENS: dict[str, str] = {}


def post(base: str, resource: dict[str, Any]) -> int:
    response = requests.post(
        f"{base}/fhir/{resource['resourceType']}",
        json=resource,
        headers={"Content-Type": "application/fhir+json"} | bearer(API_TOKENS[base]),
        timeout=30,
    )
    return response.status_code


@dataclass
class Launcher:
    """Starts `carepath` processes with one environment and stops every one of them at the end."""

    env: dict[str, str]
    prefix: str
    processes: list[CarepathProcess] = field(default_factory=list)

    def api(self) -> str:
        process, base = start_api(self.env, name=fresh_log(f"{self.prefix}-api"))
        self.processes.append(process)
        API_TOKENS[base] = token_for(self.env, "ehr")
        return base

    def worker(self, name: str = "worker", concurrency: int = 2) -> CarepathProcess:
        process = start_worker(self.env, name=fresh_log(f"{self.prefix}-{name}"), concurrency=concurrency)
        self.processes.append(process)
        return process

    def beat(self) -> CarepathProcess:
        process = start_beat(self.env, name=fresh_log(f"{self.prefix}-beat"))
        self.processes.append(process)
        return process

    def together(self, *starts: Callable[[], Any]) -> list[Any]:
        """Run several of the starts above at once (each waits for its process to be ready)."""
        with ThreadPoolExecutor(max_workers=len(starts)) as pool:
            return list(pool.map(lambda start: start(), starts))

    def logs(self) -> str:
        """The end of every process's log, for failure messages (empty if the file is gone)."""
        return "\n".join(f"--- {p.name} ---\n{log_tail(p)}" for p in self.processes)

    def stop_all(self) -> None:
        if self.processes:
            with ThreadPoolExecutor(max_workers=len(self.processes)) as pool:
                list(pool.map(lambda process: process.stop(), self.processes))


def fresh_log(name: str) -> str:
    """Remove an earlier run's log of process `name`: logs are appended to, and a stale
    "ready." line would make a new worker look ready before it is."""
    (ARTIFACTS / f"{name}.log").unlink(missing_ok=True)
    return name


def log_text(process: CarepathProcess) -> str:
    try:
        return process.log_path.read_text(errors="replace")
    except OSError:
        return ""


def log_tail(process: CarepathProcess, lines: int = 25) -> str:
    try:
        return process.log_tail(lines)
    except OSError:
        return f"({process.log_path} is gone)"


@contextmanager
def launcher(env: dict[str, str], prefix: str) -> Iterator[Launcher]:
    """A Launcher whose processes are stopped however the test ends."""
    started = Launcher(env, prefix)
    try:
        yield started
    except BaseException:
        print(started.logs())  # shown by pytest with the failure
        raise
    finally:
        started.stop_all()


def carepath_env(base: dict[str, str], data_dir: Path, **overrides: str) -> dict[str, str]:
    """`base` with a private data dir (beat's schedule file) and the given variables."""
    return {**base, "CAREPATH_DATA_DIR": str(data_dir), **overrides}


def pool_children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (a Celery worker's pool processes), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # the command name in parentheses may hold spaces; fields after it are fixed
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            children.append(int(entry.name))
    return children


def kill_process(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


class Truth:
    """Read-only queries on Carepath's database, limited to the patients of one test."""

    def __init__(self, engine: sa.Engine, patients: Iterable[str]) -> None:
        self.engine = engine
        self.patients = list(patients)

    def event_statuses(self) -> Counter[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(inbound_events.c.status).where(inbound_events.c.patient_id.in_(self.patients))
            ).scalars()
            return Counter(rows)

    def fact_evaluations(self) -> Counter[str]:
        """Per patient, how many evaluations applied facts (each event once, whatever its path).

        A replay after a late fact counts as one: the red flag's urgent lane may apply it while a
        routine batch still holds the patient's earlier visit, which then arrives late. An event
        applied twice would show as one more, a fact of its own or a replay of the fact it repeats.
        """
        applying = ("fact ", "rebuild", LATE_FACT_REPLAY)
        return Counter(patient for patient, trigger in self._triggers() if trigger.startswith(applying))

    def state(self, patient: str) -> dict[str, Any]:
        """The patient's stored engine state, as JSON."""
        with self.engine.connect() as connection:
            stored = patients.load_state(connection, patient)
        assert stored is not None, f"{patient} has no state"
        return dict(stored.state)

    def triggers(self) -> dict[str, list[str]]:
        """Per patient, what triggered each evaluation (`fact Observation/1`, `replay after the late fact …`)."""
        found: dict[str, list[str]] = {p: [] for p in self.patients}
        for patient, trigger in self._triggers():
            found[patient].append(trigger)
        return found

    def _triggers(self) -> list[tuple[str, str]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(evaluations.c.patient_id, evaluations.c.trigger).where(
                    evaluations.c.patient_id.in_(self.patients)
                )
            ).all()
        return [(patient, trigger) for patient, trigger in rows]

    def records(self) -> Counter[str]:
        """Per patient, how many distinct resources the timeline holds."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(patient_records.c.patient_id).where(patient_records.c.patient_id.in_(self.patients))
            ).scalars()
            return Counter(rows)

    def decisions(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(decisions).where(decisions.c.patient_id.in_(self.patients)).order_by(decisions.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def deliveries(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(deliveries, decisions.c.patient_id, decisions.c.step)
                .join(decisions, decisions.c.id == deliveries.c.decision_id)
                .where(decisions.c.patient_id.in_(self.patients))
                .order_by(deliveries.c.decision_id)
            ).mappings()
            return [dict(r) for r in rows]

    def delivery_statuses(self) -> Counter[str]:
        return Counter(d["status"] for d in self.deliveries())

    def attempts(self) -> dict[int, list[str]]:
        """Outcome of every delivery attempt, in order, per decision id."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(delivery_attempts.c.decision_id, delivery_attempts.c.outcome)
                .join(decisions, decisions.c.id == delivery_attempts.c.decision_id)
                .where(decisions.c.patient_id.in_(self.patients))
                .order_by(delivery_attempts.c.id)
            ).all()
        outcomes: dict[int, list[str]] = {}
        for decision_id, outcome in rows:
            outcomes.setdefault(decision_id, []).append(outcome)
        return outcomes

    def proposal_keys(self) -> list[tuple[str, str, str]]:
        """(patient, resource type, identifier) of every resource Carepath decided to write."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(proposals.c.patient_id, proposals.c.resource_type, proposals.c.identifier)
                .where(proposals.c.patient_id.in_(self.patients))
                .order_by(proposals.c.patient_id, proposals.c.identifier)
            ).all()
        return [(patient, kind, key) for patient, kind, key in rows]


def breaker_state(engine: sa.Engine, name: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(circuit_breakers.c.state).where(circuit_breakers.c.name == name)
        ).scalar_one_or_none()


class Ehr:
    """Reads the EHR directly (never through a fault proxy)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url = base_url
        self.headers = headers

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        response = requests.get(f"{self.base_url}/{path}", params=params, headers=self.headers, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def tasks(self, patient: str) -> list[dict[str, Any]]:
        bundle = self._get("Task", {"patient": f"Patient/{patient}", "_count": "200"})
        return [e["resource"] for e in bundle.get("entry", [])]

    def keys(self, resource_type: str, patient: str) -> list[str]:
        """Carepath's key of every `resource_type` the EHR holds for `patient`, repeats kept."""
        bundle = self._get(resource_type, {"patient": f"Patient/{patient}", "_count": "200"})
        return [key_of(e["resource"]) for e in bundle.get("entry", [])]

    def task_codes(self, patient: str) -> Counter[str]:
        return Counter(t["code"]["coding"][0]["code"] for t in self.tasks(patient))

    def count(self, resource_type: str, patient: str) -> int:
        return int(self._get(resource_type, {"patient": f"Patient/{patient}", "_summary": "count"})["total"])

    def copies_of(self, resource_type: str, identifier: str) -> int:
        """How many resources carry Carepath's key `identifier` (a Provenance in its meta.tag)."""
        parameter = "_tag" if resource_type == "Provenance" else "identifier"
        criteria = token_criteria(parameter, PROPOSAL_IDENTIFIER_SYSTEM, identifier)
        return int(self._get(f"{resource_type}?{criteria}&_summary=count")["total"])

    def copies_of_each(self, keys: Iterable[tuple[str, str, str]]) -> dict[str, int]:
        """{identifier: copies in the EHR} for (patient, resource type, identifier) keys."""
        return {identifier: self.copies_of(resource_type, identifier) for _, resource_type, identifier in keys}


class BreakerWatch:
    """Records every state the breaker row takes, polled in the background while a test runs."""

    def __init__(self, engine: sa.Engine, name: str, interval: float = 0.05) -> None:
        self.engine = engine
        self.name = name
        self.interval = interval
        self.states: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> BreakerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.is_set():
            state = breaker_state(self.engine, self.name)
            if state is not None and (not self.states or self.states[-1] != state):
                self.states.append(state)
            self._stop.wait(self.interval)
