"""Carepath ships pt-nonresponse 1.0.0, 1.1.0 and 2.0.0: the newest starts new patients, the older stay loadable.

Each test runs on a database of its own. "An earlier release" is Carepath started with only the
1.0.0 it shipped then, stored as that release stored it (the previous checkpoint-table format).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from pathways.definition import SHIPPED_1_1, SHIPPED_VERSIONS, load_definition_file
from pathways.lines.patient import RegionalState
from service import audit
from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store import decisions, patients
from service.store.database import transaction
from service.store.state_codec import pathway_state_from_json
from service.usecases.definitions import versions
from service.usecases.definitions.migration import diff
from service.usecases.definitions.registry import SHIPPED_UPLOADER
from service.usecases.evaluation import run_due_checkpoint
from tests.access import token_for
from tests.builders import (
    PAIN,
    SNOMED,
    adherence,
    adherent_non_responder,
    diagnosis,
    measure,
    procedure,
    pt_visit,
    shipped_definition,
)
from tests.enrolment import evaluate_each, pinned
from tests.stack import new_database, new_patient_id

PREVIOUS_RELEASE = Path(__file__).parents[1] / "fixtures" / "definitions" / "pt-nonresponse-1.0.0-previous-format.yaml"
URL = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse"
RADICULAR_DISC = (SNOMED, "202735001")  # a disc prolapse with radiculopathy: radicular and structural
MRI_LUMBAR_DONE = ("http://www.ama-assn.org/go/cpt", "72148")
NEWEST_ACTIVE = {
    "2.0.0": ("active", SHIPPED_UPLOADER),
    "1.1.0": ("retired", SHIPPED_UPLOADER),
    "1.0.0": ("retired", SHIPPED_UPLOADER),
}
"""The shipped versions as Carepath lists them: the newest active, the older ones retired but loadable."""


@pytest.fixture()
def settings(stack_settings: Settings) -> Iterator[Settings]:
    with new_database() as url:
        yield replace(stack_settings, database_url=url)


def released_with(settings: Settings, definition: Path) -> Iterator[Services]:
    """Carepath as released with `definition` alone, listed as the active version."""
    built = build(replace(settings, pathway_definition=definition))
    with transaction(built.db) as connection:
        built.definitions.versions(connection)
    yield built
    built.db.dispose()


@pytest.fixture()
def earlier_release(settings: Settings) -> Iterator[Services]:
    """Carepath as released before 1.1.0: 1.0.0 alone."""
    yield from released_with(settings, PREVIOUS_RELEASE)


@pytest.fixture()
def release_1_1(settings: Settings) -> Iterator[Services]:
    """Carepath as released with pt-nonresponse 1.1.0 alone, the version its patients were enrolled on."""
    yield from released_with(settings, SHIPPED_1_1)


@pytest.fixture()
def services(settings: Settings) -> Iterator[Services]:
    """This release."""
    built = build(settings)
    yield built
    built.db.dispose()


def listed(services: Services) -> dict[str, tuple[str, str | None]]:
    with transaction(services.db) as connection:
        return {v.version: (v.status, v.uploaded_by) for v in services.definitions.versions(connection)}


def active_version(services: Services) -> str:
    with transaction(services.db) as connection:
        return services.definitions.active(connection).version


def structural_after_a_failed_injection(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """An adherent non-responder with a disc prolapse and radiculopathy, imaged after the MRI proposal.

    Reassessment at 6 weeks, imaging at 10, injection at 16; at 22 weeks 1.0.0 proposes a medication
    review and 1.1.0 (2.0.0 likewise, for the spine) the surgical consult (a), tried first since 1.1.
    """
    return [
        *adherent_non_responder(patient, t0),
        diagnosis(patient, RADICULAR_DISC, t0 + timedelta(days=10)),
        procedure(patient, MRI_LUMBAR_DONE, t0 + timedelta(days=75)),
    ]


def test_a_fresh_database_starts_new_patients_on_2_0_0_and_lists_1_x_retired_but_loadable(
    services: Services,
) -> None:
    patient = new_patient_id()
    evaluate_each(services, [pt_visit(patient, datetime.now(UTC) - timedelta(days=1))])

    assert pinned(services, patient) == f"{URL}|2.0.0"
    assert listed(services) == NEWEST_ACTIVE
    with transaction(services.db) as connection:
        assert services.definitions.get(connection, f"{URL}|1.0.0") == load_definition_file(SHIPPED_VERSIONS[0])
        assert services.definitions.get(connection, f"{URL}|1.1.0") == load_definition_file(SHIPPED_VERSIONS[1])
        assert services.definitions.active(connection) == load_definition_file(SHIPPED_VERSIONS[2])


def test_on_a_database_running_the_shipped_1_0_0_new_patients_start_on_2_0_0_and_the_enrolled_stay_until_migrated(
    earlier_release: Services, services: Services
) -> None:
    enrolled, newcomer = new_patient_id(), new_patient_id()
    t0 = datetime.now(UTC) - timedelta(weeks=23)
    evaluate_each(earlier_release, structural_after_a_failed_injection(enrolled, t0))
    assert pinned(earlier_release, enrolled) == f"{URL}|1.0.0"

    assert active_version(services) == "2.0.0"  # before anything listed the versions again
    evaluate_each(services, [pt_visit(newcomer, datetime.now(UTC) - timedelta(days=1))])
    evaluate_each(services, [pt_visit(enrolled, datetime.now(UTC) - timedelta(days=1))])
    assert pinned(services, newcomer) == f"{URL}|2.0.0"
    assert pinned(services, enrolled) == f"{URL}|1.0.0"

    assert listed(services) == NEWEST_ACTIVE
    admin = admin_client(services)
    (row,) = [v for v in admin.get("/admin/definitions").get_json()["definitions"] if v["version"] == "2.0.0"]
    assert row["publishedAt"] is not None

    # A spine patient: 2.0.0 proposes what 1.1.0 does (spec 2.0 section 0), the surgical consult first.
    diff = admin.get("/admin/definitions/pt-nonresponse/2.0.0/diff").get_json()
    (mine,) = [p for p in diff["patients"] if p["patient"] == f"Patient/{enrolled}"]
    assert any("/medication/" in p for p in mine["onlyCurrent"]), mine
    assert any("/surgical-consult/" in p for p in mine["onlyTarget"]), mine
    assert all(p["patient"] != f"Patient/{newcomer}" for p in diff["patients"])

    moved = admin.post("/admin/definitions/pt-nonresponse/2.0.0/migrate", json={"patients": [enrolled]}).get_json()
    assert moved["migrated"] == [enrolled]
    assert pinned(services, enrolled) == f"{URL}|2.0.0"


def admin_client(services: Services) -> FlaskClient:
    client = create_app(services.settings, services=services).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token_for(services, 'admin')}"
    return client


def test_a_version_an_administrator_published_stays_active_and_2_0_0_waits_as_a_draft(
    earlier_release: Services, services: Services
) -> None:
    own = versions.upload(earlier_release, shipped_definition("1.0.5", shipped=SHIPPED_VERSIONS[0]), "Ada", actor())
    versions.publish(earlier_release, own.reference, actor())

    assert active_version(services) == "1.0.5"
    assert listed(services) == {
        "2.0.0": ("draft", SHIPPED_UPLOADER),
        "1.1.0": ("retired", SHIPPED_UPLOADER),
        "1.0.5": ("active", "Ada"),
        "1.0.0": ("retired", SHIPPED_UPLOADER),
    }
    patient = new_patient_id()
    evaluate_each(services, [pt_visit(patient, datetime.now(UTC) - timedelta(days=1))])
    assert pinned(services, patient) == f"{URL}|1.0.5"

    versions.publish(services, f"{URL}|2.0.0", actor())
    assert active_version(services) == "2.0.0"


def test_an_administrators_own_1_1_0_is_never_taken_for_the_shipped_one(
    earlier_release: Services, services: Services
) -> None:
    versions.upload(
        earlier_release, shipped_definition("1.1.0", pain_mcid=1, shipped=SHIPPED_VERSIONS[0]), "Ada", actor()
    )

    # The shipped 1.1.0 cannot be listed under the same version; the shipped 2.0.0 takes over from 1.0.0.
    assert active_version(services) == "2.0.0"
    assert listed(services) == {
        "2.0.0": ("active", SHIPPED_UPLOADER),
        "1.1.0": ("draft", "Ada"),
        "1.0.0": ("retired", SHIPPED_UPLOADER),
    }
    with transaction(services.db) as connection:
        theirs = services.definitions.get(connection, f"{URL}|1.1.0")
    assert theirs.measures[0].mcid_points == 1


def test_two_processes_starting_on_the_shipped_1_0_0_leave_exactly_one_active_version(
    earlier_release: Services, settings: Settings
) -> None:
    first, second = build(settings), build(settings)
    finished = threading.Event()

    def list_in_second() -> None:
        listed(second)  # waits for the first process's uncommitted rows, then finds the change made
        finished.set()

    with transaction(first.db) as connection:
        first.definitions.versions(connection)
        other = threading.Thread(target=list_in_second)
        other.start()
        assert not finished.wait(1.0)  # held by the first transaction's rows
    other.join(10)

    assert listed(first) == NEWEST_ACTIVE
    first.db.dispose()
    second.db.dispose()


def actor() -> audit.Actor:
    """The command line's actor: no identity."""
    return audit.Actor(None)


def test_an_administrators_rollback_to_the_shipped_1_0_0_stays_active_and_2_0_0_waits_retired(
    services: Services,
) -> None:
    """A retired version may be published again; Carepath never takes a version over from an administrator."""
    assert listed(services)["1.0.0"] == ("retired", SHIPPED_UPLOADER)
    preview = versions.preview_publication(services, f"{URL}|1.0.0")
    assert preview.retires is not None and preview.retires.version == "2.0.0"
    assert "Steps removed: relapse." in preview.changes

    versions.publish(services, f"{URL}|1.0.0", actor())

    again = build(services.settings)  # another process reading the versions afresh
    try:
        assert active_version(again) == "1.0.0"
        assert {v: s for v, (s, _) in listed(again).items()} == {
            "1.0.0": "active",
            "1.1.0": "retired",
            "2.0.0": "retired",
        }
        patient = new_patient_id()
        evaluate_each(again, [pt_visit(patient, datetime.now(UTC) - timedelta(days=1))])
        assert pinned(again, patient) == f"{URL}|1.0.0"
    finally:
        again.db.dispose()
    assert versions.preview_publication(services, f"{URL}|1.0.0").retires is None  # already active


# --- 1.1.0 to 2.0.0 ----------------------------------------------------------------------------------
# Spec 2.0 (pathway-spec-joints.md, section 0): patients enrolled on 1.x stay on their version until an
# administrator migrates them, after the diff showed what 2.0.0 would change for each. The patient has
# knee osteoarthritis and knee measures; 1.1.0 reads no knee and treated them as lumbar (an orthopaedic
# second opinion, then a lumbar MRI); 2.0.0 opens a knee episode (sport and exercise medicine with a
# change of PT approach, then knee radiographs).

KNEE_OA = ("http://hl7.org/fhir/sid/icd-10-cm", "M17.11")  # spec 2.0 1.3; icd10cm-joints-expansion.csv
KOOS_JR = ("http://loinc.org", "82332-8")  # spec 2.0 3; codes-joints.csv
KNEE = {"coding": [{"system": SNOMED, "code": "72696002", "display": "Knee region structure"}]}  # spec 2.0 1.3
LUMBAR_MRI, KNEE_RADIOGRAPH = "72148", "73562"  # CPT: 1.1 imaging row (lumbar); spec 2.0 5.4 (knee)


def knee_pain(patient: str, value: float, at: datetime) -> dict[str, Any]:
    return measure(patient, PAIN, value, at) | {"bodySite": KNEE}


def knee_oa_treated_as_lumbar(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Knee OA before the first visit; nine weekly visits; KOOS JR 41 → 49 and knee pain 7 → 6; adherence 92 %.

    Not responded by either version's MCIDs (KOOS JR +8 < 15; pain −1, −14 %), adherent.
    """
    return [
        diagnosis(patient, KNEE_OA, t0 - timedelta(days=3)),
        *(pt_visit(patient, t0 + timedelta(weeks=n)) for n in range(9)),
        measure(patient, KOOS_JR, 41, t0 + timedelta(hours=1)),
        knee_pain(patient, 7, t0 + timedelta(hours=1)),
        adherence(patient, 92, t0 + timedelta(days=39)),
        measure(patient, KOOS_JR, 49, t0 + timedelta(days=40)),
        knee_pain(patient, 6, t0 + timedelta(days=40)),
    ]


def clinical_time(resource: dict[str, Any]) -> str:
    return str(resource.get("recordedDate") or resource.get("effectiveDateTime") or resource["period"]["start"])


def enrolled_on_1_1(release_1_1: Services, patient: str, resources: list[dict[str, Any]]) -> None:
    """The facts as the EHR sent them, in clinical order, each evaluated on 1.1.0 when it arrived."""
    evaluate_each(release_1_1, sorted(resources, key=clinical_time))
    run_due_checkpoint(release_1_1, patient)  # the ten-week imaging checkpoint, after the last fact
    assert pinned(release_1_1, patient) == f"{URL}|1.1.0"


def decided(services: Services, patient: str) -> list[tuple[str, str, str, str]]:
    """The patient's stored decisions: key, step, the version that made each, and its status."""
    with transaction(services.db) as connection:
        rows = decisions.decisions_of(connection, patient)
    return [(r["decision_key"], r["step"], r["definition"], r["status"]) for r in rows]


def test_the_diff_to_2_0_0_names_the_knee_steps_instead_of_the_lumbar_ones_and_the_migration_keeps_the_decisions(
    release_1_1: Services, services: Services
) -> None:
    knee, spine = new_patient_id(), new_patient_id()
    t0 = datetime.now(UTC) - timedelta(weeks=11)
    enrolled_on_1_1(release_1_1, knee, knee_oa_treated_as_lumbar(knee, t0))
    enrolled_on_1_1(release_1_1, spine, adherent_non_responder(spine, t0))
    made_on_1_1 = decided(release_1_1, knee)
    assert [(step, definition) for _, step, definition, _ in made_on_1_1] == [
        ("reassessment", f"{URL}|1.1.0"),
        ("imaging", f"{URL}|1.1.0"),
    ]

    admin = admin_client(services)
    answer = admin.get("/admin/definitions/pt-nonresponse/2.0.0/diff").get_json()
    assert answer["target"] == f"{URL}|2.0.0"
    (mine,) = [p for p in answer["patients"] if p["patient"] == f"Patient/{knee}"]
    assert mine["current"] == f"{URL}|1.1.0"
    # The lumbar MRI and the orthopaedic second opinion are no longer made; the knee's steps instead.
    (no_longer_imaged,) = [p for p in mine["onlyCurrent"] if p.startswith("1/imaging/")]
    (imaged_instead,) = [p for p in mine["onlyTarget"] if p.startswith("1/imaging/")]
    assert LUMBAR_MRI in no_longer_imaged and KNEE_RADIOGRAPH in imaged_instead and "xr-knee" in imaged_instead
    (reassessed,) = [p for p in mine["onlyTarget"] if p.startswith("1/reassessment/")]
    assert "715962007" in reassessed and "308447003" in reassessed  # sport and exercise medicine; physiotherapist
    # A spine patient's proposals are the same under 2.0.0 (spec 2.0 section 0, compatibility): not listed.
    assert all(p["patient"] != f"Patient/{spine}" for p in answer["patients"])

    with transaction(services.db) as connection:
        changes = diff(services, connection, services.definitions.active(connection))
    (change,) = [c for c in changes if c.patient_id == knee]
    assert "MRI of the lumbar spine" in change.words(no_longer_imaged)
    assert "Radiographs of the knee" in change.words(imaged_instead)

    moved = admin.post("/admin/definitions/pt-nonresponse/2.0.0/migrate", json={"patients": [knee]}).get_json()
    assert moved == {"target": f"{URL}|2.0.0", "migrated": [knee]}
    assert pinned(services, knee) == f"{URL}|2.0.0"
    assert pinned(services, spine) == f"{URL}|1.1.0"  # migration is per patient

    with transaction(services.db) as connection:
        stored = patients.load_state(connection, knee)
    assert stored is not None
    state = pathway_state_from_json(stored.state)
    assert isinstance(state, RegionalState)  # the 2.0 form: one lane per episode line
    (lane,) = state.lanes
    assert (lane.line, lane.state.episode, lane.state.t0) == ("knee", "1", t0)
    # The decisions made on 1.1.0 stand: stored as they were, and held by the knee episode as made.
    assert decided(services, knee) == made_on_1_1
    assert [f.key for f in lane.state.fired] == [key for key, *_ in made_on_1_1]
    # Its next checkpoint is the knee's, six weeks after the imaging decision (spec 2.0 5.1).
    knee_checkpoint = t0 + timedelta(weeks=10 + 6)
    assert lane.state.checkpoint_due_at == knee_checkpoint
    with transaction(services.db) as connection:  # and the sweep finds it then
        assert knee not in patients.due_checkpoints(connection, knee_checkpoint - timedelta(seconds=1))
        assert knee in patients.due_checkpoints(connection, knee_checkpoint)

    # The next fact is evaluated on 2.0.0: nothing decided again.
    evaluate_each(services, [pt_visit(knee, datetime.now(UTC) - timedelta(hours=1))])
    assert pinned(services, knee) == f"{URL}|2.0.0"
    assert decided(services, knee) == made_on_1_1
