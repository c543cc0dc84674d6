"""Arrival order does not change the outcome (spec, "Evaluating as of a moment"), with the real parts.

Hypothesis generates patient journeys (PT visits, pain, ODI and PSFS scores, adherence, barriers,
diagnoses, imaging, an injection, an MRI contraindication, red-flag findings), all dated in the
past so every checkpoint has fallen due. Each journey is posted through the API in three
arrival orders, each as its own patient, all patients at once with small random pauses, while
beat sweeps the checkpoints that fall due between the arrivals: so checkpoints are evaluated on
partial facts and the facts that arrive after them are late. Once everything is quiet, each
patient's open proposals, in Carepath and in the SEKMET EHR, must be those of a dry run of the
same facts (`pathways.simulate`) — but for red flags the live pathway raised on part of the facts,
which stand (spec: only a retraction withdraws a red flag): they may be open beside the dry run's.

The journeys are drawn with a fixed seed and no example database, so every run posts the same
facts; the property is checked over all of them at once (posting each journey on its own and
waiting for it would take hours), so a failure lists every journey that broke it.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pathways.definition import SHIPPED_1_1 as SHIPPED_1_0
from pathways.definition import Definition, load_definition_file
from pathways.fhir import outbound, task_lifecycle
from service.settings import Settings
from service.store.database import make_engine
from service.store.tables import deliveries, inbound_events, patient_states, proposals
from service.usecases.dry_run import dry_run, records_of_bundle
from tests.builders import AUTHOR, LOCAL, ODI, PAIN, SNOMED, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.faults.helpers import carepath_env, launcher, post
from tests.faults.redis_server import RedisServer
from tests.processes import wait_until
from tests.stack import new_patient_id, settings_env

JOURNEYS = int(os.environ.get("CAREPATH_ARRIVAL_JOURNEYS", "200"))
RED_FLAG_IDENTIFIER = "|red-flags:"  # in a proposal identifier: `…|1.1.0|2|red-flags:major|1|physician-review`
ORDERS = 3  # arrival orders of each journey, each posted as its own patient
WEEKS_AGO = 30  # t0: every fact is dated within 22 weeks of it, so their checkpoints are all due
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
PSFS = (LOCAL, "psfs-mean-score")
# Diagnoses by group (spec "Diagnoses"): radicular and disc herniation, stenosis, chronic pain, instability.
DIAGNOSES = [(SNOMED, "202735001"), (SNOMED, "18347007"), (SNOMED, "82423001"), (SNOMED, "4046000"), (ICD10, "M54.16")]
# Red-flag findings whose reading does not depend on a diagnosis dated before them (spec "Red flags"):
# fever and night pain are minor (two make the urgent cluster), cauda equina is major.
FINDINGS = [(SNOMED, "386661006"), (LOCAL, "rf-night-pain"), (SNOMED, "192970008")]
BARRIERS = ["barrier-time", "barrier-forgetting", "barrier-therapist-fit"]


@dataclass(frozen=True)
class Fact:
    """One dated fact of a journey: `kind` and its value, `day` and `hour` after t0."""

    kind: str
    day: int
    hour: int
    value: Any = None


def _dated(kind: str, value: st.SearchStrategy[Any], days: st.SearchStrategy[int]) -> st.SearchStrategy[Fact]:
    # Whole hours from a short list: facts at the same instant happen, and must be read in the fixed order.
    return st.builds(Fact, st.just(kind), days, st.sampled_from([0, 9, 14]), value)


DAYS = st.integers(-10, 150)
KINDS = {
    "visit": (_dated("visit", st.none(), st.integers(1, 120)), 7),
    "pain": (_dated("pain", st.integers(0, 10), DAYS), 4),
    "odi": (_dated("odi", st.integers(0, 100), DAYS), 2),
    "psfs": (_dated("psfs", st.integers(0, 10), DAYS), 2),
    "adherence": (_dated("adherence", st.integers(40, 100), DAYS), 3),
    "barrier": (_dated("barrier", st.sampled_from(BARRIERS), DAYS), 1),
    "diagnosis": (_dated("diagnosis", st.sampled_from(DIAGNOSES), DAYS), 2),
    "imaging": (_dated("imaging", st.sampled_from(["report", "procedure"]), DAYS), 1),
    "injection": (_dated("injection", st.none(), DAYS), 1),
    "contraindication": (_dated("contraindication", st.none(), DAYS), 1),
    "finding": (_dated("finding", st.sampled_from(FINDINGS), DAYS), 2),
}


@st.composite
def journeys(draw: st.DrawFn) -> tuple[list[Fact], list[list[int]]]:
    """A first PT visit at t0 and a few facts of each kind around it, with its arrival orders."""
    facts = [Fact("visit", 0, 9)]
    for kind, (strategy, most) in KINDS.items():
        if kind in ("finding", "injection", "contraindication") and draw(st.integers(0, 3)) != 0:
            continue  # rarer: most journeys are about non-response, not red flags
        facts += draw(st.lists(strategy, max_size=most))
    orders = [draw(st.permutations(range(len(facts)))) for _ in range(ORDERS)]
    return facts, orders


def resources_of(journey: list[Fact], patient: str, t0: datetime) -> list[dict[str, Any]]:
    """The journey's facts as FHIR resources of `patient`, ids unique to the patient."""
    return [
        _resource(fact, patient, f"{patient}-{n}", t0 + timedelta(days=fact.day, hours=fact.hour))
        for n, fact in enumerate(journey)
    ]


def _resource(fact: Fact, patient: str, rid: str, at: datetime) -> dict[str, Any]:
    subject = {"reference": f"Patient/{patient}"}
    when = at.isoformat().replace("+00:00", "Z")
    if fact.kind == "visit":
        return pt_visit(patient, at, rid)
    if fact.kind in ("pain", "odi", "psfs"):
        return measure(patient, {"pain": PAIN, "odi": ODI, "psfs": PSFS}[fact.kind], fact.value, at, rid)
    if fact.kind == "adherence":
        resource = measure(patient, (LOCAL, "hep-adherence-pct"), fact.value, at, rid)
        resource["valueQuantity"] = {
            "value": fact.value,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        }
        return resource
    if fact.kind == "barrier":
        resource = finding(patient, (LOCAL, "hep-barrier"), at, rid)
        del resource["valueBoolean"]
        resource["valueCodeableConcept"] = {"coding": [{"system": LOCAL, "code": fact.value}]}
        return resource
    if fact.kind in ("finding", "contraindication"):
        return finding(patient, fact.value or (LOCAL, "mri-contraindicated"), at, rid)
    if fact.kind == "diagnosis":
        return {
            "resourceType": "Condition",
            "id": rid,
            "meta": {"versionId": "1"},
            "verificationStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
                ]
            },
            "code": {"coding": [{"system": fact.value[0], "code": fact.value[1]}]},
            "subject": subject,
            "recordedDate": when,
        }
    if fact.kind == "imaging" and fact.value == "report":
        code = {"coding": [{"system": SNOMED, "code": "394451000119106"}]}
        return {
            "resourceType": "DiagnosticReport",
            "id": rid,
            "status": "final",
            "code": code,
            "subject": subject,
            "effectiveDateTime": when,
        }
    cpt = "72148" if fact.kind == "imaging" else "62323"
    code = {"coding": [{"system": CPT, "code": cpt}]}
    return {
        "resourceType": "Procedure",
        "id": rid,
        "status": "completed",
        "code": code,
        "subject": subject,
        "performedDateTime": when,
    }


@dataclass
class Case:
    """One journey in one arrival order, posted as its own patient."""

    patient: str
    journey: list[Fact]
    resources: list[dict[str, Any]]  # in arrival order


def drawn_cases(t0: datetime) -> list[Case]:
    """The journeys and their arrival orders, drawn by Hypothesis with a fixed seed."""
    cases: list[Case] = []

    @settings(
        max_examples=JOURNEYS,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(journeys())
    def draw(drawn: tuple[list[Fact], list[list[int]]]) -> None:
        journey, orders = drawn
        for order in orders:
            patient = new_patient_id()
            resources = resources_of(journey, patient, t0)
            cases.append(Case(patient, journey, [resources[n] for n in order]))

    draw()
    return cases[: JOURNEYS * ORDERS]


Proposal = tuple[str, str, tuple[tuple[str, str], ...]]
"""(resource type, identifier without a reissue, codes) of an open Task or ServiceRequest."""


def proposal_of(resource: dict[str, Any]) -> Proposal:
    """An open proposal as the comparison sees it: a decision made again after its earlier copy was
    withdrawn carries a reissue on its occurrence (`2~2`), which a dry run, withdrawing nothing it
    made open, never needs."""
    key = REISSUE.sub("", outbound.key_of(resource))
    codes = tuple((c.get("system", ""), c.get("code", "")) for c in resource.get("code", {}).get("coding", []))
    return (resource["resourceType"], key, codes)


REISSUE = re.compile(r"~\d+(?=\|[^|]*$)")


def open_expected(definition: Definition, case: Case, now: datetime) -> set[Proposal]:
    """Every Task and ServiceRequest a dry run of the case leaves open (withdrawn ones carry their status)."""
    records = records_of_bundle(
        {"resourceType": "Bundle", "entry": [{"resource": r} for r in case.resources]}, definition
    )
    bundle = dry_run(definition, records, now, AUTHOR)
    return {
        proposal_of(entry["resource"])
        for entry in bundle.get("entry", [])
        if entry["resource"]["resourceType"] in ("Task", "ServiceRequest") and is_open(entry["resource"])
    }


def is_open(resource: dict[str, Any]) -> bool:
    if resource["resourceType"] == "Task":
        return resource.get("status") in task_lifecycle.OPEN
    return resource.get("status") in outbound.OPEN_REQUEST_STATUSES


def post_in_arrival_orders(base: str, cases: list[Case], seed: int) -> None:
    """Post every case's resources in its order, patients interleaved, with small random pauses."""
    rng = random.Random(seed)
    lanes: list[list[list[dict[str, Any]]]] = [[] for _ in range(8)]
    for n, case in enumerate(cases):
        lanes[n % len(lanes)].append(list(case.resources))
    failures: list[tuple[str, int]] = []
    lock = threading.Lock()

    def run(lane: list[list[dict[str, Any]]], lane_seed: int) -> None:
        pick = random.Random(lane_seed)
        pending = lane
        while pending:
            queue = pick.choice(pending)
            resource = queue.pop(0)
            if not queue:
                pending.remove(queue)
            time.sleep(pick.uniform(0, 0.02))
            status = post(base, resource)
            if status not in (200, 201):
                with lock:
                    failures.append((resource["id"], status))

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        list(pool.map(run, lanes, [rng.randrange(1 << 30) for _ in lanes]))
    assert failures == []


def quiet(db: sa.Engine, patients: list[str]) -> bool:
    """Every event evaluated, no checkpoint due, every write and change delivered to the EHR."""
    now = datetime.now(UTC)
    with db.connect() as connection:
        pending = connection.execute(
            sa.select(sa.func.count()).select_from(inbound_events).where(inbound_events.c.status == "pending")
        ).scalar_one()
        due = connection.execute(
            sa.select(sa.func.count())
            .select_from(patient_states)
            .where(patient_states.c.patient_id.in_(patients), patient_states.c.checkpoint_due_at <= now)
        ).scalar_one()
        undelivered = connection.execute(
            sa.select(sa.func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
        ).scalar_one()
        unsynced = connection.execute(
            sa.select(sa.func.count()).select_from(proposals).where(proposals.c.sync_pending.is_(True))
        ).scalar_one()
    return pending == due == undelivered == unsynced == 0


def live_open(db: sa.Engine, patients: list[str]) -> dict[str, set[Proposal]]:
    found: dict[str, set[Proposal]] = {p: set() for p in patients}
    with db.connect() as connection:
        rows = connection.execute(
            sa.select(proposals.c.patient_id, proposals.c.resource).where(
                proposals.c.patient_id.in_(patients), proposals.c.resource_type.in_(("Task", "ServiceRequest"))
            )
        )
        for row in rows:
            if is_open(row.resource):
                found[row.patient_id].add(proposal_of(row.resource))
    return found


def ehr_open(sekmet: SekmetServer, patient: str) -> set[Proposal]:
    """The open Tasks and ServiceRequests the EHR holds for `patient`."""
    return {
        proposal_of(resource)
        for kind in ("Task", "ServiceRequest")
        for resource in sekmet.search(kind, patient=f"Patient/{patient}", _count="500")
        if is_open(resource)
    }


def enrolled_definitions(db: sa.Engine, patients: list[str]) -> dict[str, Definition]:
    """Each patient's pinned definition, read from the shipped file of its version."""
    loaded: dict[str, Definition] = {}
    with db.connect() as connection:
        rows = connection.execute(
            sa.select(patient_states.c.patient_id, patient_states.c.definition).where(
                patient_states.c.patient_id.in_(patients)
            )
        )
        pinned = {r.patient_id: r.definition for r in rows}
    files = {}
    for patient, reference in pinned.items():
        version = reference.rsplit("|", 1)[1]
        if version not in files:
            files[version] = load_definition_file(SHIPPED_1_0.with_name(f"pt-nonresponse-{version}.yaml"))
        loaded[patient] = files[version]
    return loaded


@pytest.fixture(scope="module")
def db(postgres_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def test_open_proposals_after_every_arrival_order_are_those_of_a_dry_run_in_carepath_and_in_the_ehr(
    postgres_url: str, db: sa.Engine, sekmet: SekmetServer, tmp_path: Path
) -> None:
    t0 = (datetime.now(UTC) - timedelta(weeks=WEEKS_AGO, days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    cases = drawn_cases(t0)
    assert len(cases) == JOURNEYS * ORDERS, "Hypothesis drew fewer journeys than asked"
    patients = [case.patient for case in cases]
    settings_ = replace(Settings.from_env({}), database_url=postgres_url, log_format="json")
    started = time.monotonic()
    with RedisServer() as broker:
        env = carepath_env(
            settings_env(settings_),
            tmp_path / "carepath",
            REDIS_URL=broker.url(),
            SWEEP_INTERVAL_SECONDS="1",
            EHR_BASE_URL=sekmet.base_url,
            EHR_TOKEN=sekmet.token,
        )
        with launcher(env, "arrival") as run:
            _, _, base = run.together(lambda: run.worker("w", concurrency=4), run.beat, run.api)
            post_in_arrival_orders(base, cases, seed=20260501)
            wait_until(lambda: quiet(db, patients), 900, interval=2, what="every event, checkpoint and write done")
            time.sleep(3)  # a sweep's last checkpoint may still be on its way
            wait_until(lambda: quiet(db, patients), 300, interval=2, what="quiet again")
    now = datetime.now(UTC)
    definitions = enrolled_definitions(db, patients)
    live = live_open(db, patients)
    broken, standing = [], 0
    for case in cases:
        expected = open_expected(definitions[case.patient], case, now)
        in_ehr = ehr_open(sekmet, case.patient)
        # A red flag raised live stands (spec: only a retraction withdraws one, and a red flag is never
        # hidden): one the live pathway raised on part of the facts, say before a late visit joined two
        # episodes into one, may be open beside the dry run's. Every other difference, and any red flag
        # the dry run makes that the live pathway lacks, still fails.
        extra = {item for item in live[case.patient] - expected if RED_FLAG_IDENTIFIER in item[1]}
        standing += len(extra)
        if live[case.patient] - extra != expected or in_ehr - extra != expected:
            broken.append(
                f"{case.patient}: journey {case.journey}\n  arrival {[r['id'] for r in case.resources]}\n"
                f"  only live {sorted(live[case.patient] - expected)}\n"
                f"  only dry run {sorted(expected - live[case.patient])}\n"
                f"  EHR differs: {sorted(in_ehr ^ expected)}"
            )
    print(f"{len(cases)} patients posted and checked in {time.monotonic() - started:.0f} s")
    print(f"{standing} red-flag proposals raised live on part of the facts stand beside the dry run's")
    assert broken == [], f"{len(broken)} of {len(cases)} patients differ from the dry run:\n" + "\n".join(broken[:20])
