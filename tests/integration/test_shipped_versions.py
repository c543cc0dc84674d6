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

from pathways.definition import SHIPPED_VERSIONS, load_definition_file
from service import audit
from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store.database import transaction
from service.usecases.definitions import versions
from service.usecases.definitions.registry import SHIPPED_UPLOADER
from tests.access import token_for
from tests.builders import SNOMED, adherent_non_responder, diagnosis, procedure, pt_visit, shipped_definition
from tests.enrolment import evaluate_each, pinned
from tests.stack import new_database, new_patient_id

PREVIOUS_RELEASE = Path(__file__).parents[1] / "fixtures" / "definitions" / "pt-nonresponse-1.0.0-previous-format.yaml"
URL = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse"
RADICULAR_DISC = (SNOMED, "202735001")  # a disc prolapse with radiculopathy: radicular and structural
MRI_LUMBAR_DONE = ("http://www.ama-assn.org/go/cpt", "72148")


@pytest.fixture()
def settings(stack_settings: Settings) -> Iterator[Settings]:
    with new_database() as url:
        yield replace(stack_settings, database_url=url)


@pytest.fixture()
def earlier_release(settings: Settings) -> Iterator[Services]:
    """Carepath as released before 1.1.0: 1.0.0 alone, listed as the active version."""
    built = build(replace(settings, pathway_definition=PREVIOUS_RELEASE))
    with transaction(built.db) as connection:
        built.definitions.versions(connection)
    yield built
    built.db.dispose()


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
    review and 1.1.0 the surgical consult (a), tried first since 1.1.
    """
    return [
        *adherent_non_responder(patient, t0),
        diagnosis(patient, RADICULAR_DISC, t0 + timedelta(days=10)),
        procedure(patient, MRI_LUMBAR_DONE, t0 + timedelta(days=75)),
    ]


ALL_SHIPPED_2_0_ACTIVE = {
    "2.0.0": ("active", SHIPPED_UPLOADER),
    "1.1.0": ("retired", SHIPPED_UPLOADER),
    "1.0.0": ("retired", SHIPPED_UPLOADER),
}


def test_a_fresh_database_starts_new_patients_on_2_0_0_and_lists_1_x_retired_but_loadable(
    services: Services,
) -> None:
    patient = new_patient_id()
    evaluate_each(services, [pt_visit(patient, datetime.now(UTC) - timedelta(days=1))])

    assert pinned(services, patient) == f"{URL}|2.0.0"
    assert listed(services) == ALL_SHIPPED_2_0_ACTIVE
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

    assert listed(services) == ALL_SHIPPED_2_0_ACTIVE
    admin = admin_client(services)
    (row,) = [v for v in admin.get("/admin/definitions").get_json()["definitions"] if v["version"] == "2.0.0"]
    assert row["publishedAt"] is not None

    # 2.0's spine is 1.1's: the diff shows what 1.1 changed for this 1.0.0 patient
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


def test_a_version_an_administrator_published_stays_active_and_the_newest_shipped_waits_as_a_draft(
    earlier_release: Services, services: Services
) -> None:
    own = versions.upload(earlier_release, shipped_definition("1.0.5", shipped=SHIPPED_VERSIONS[0]), "Ada", actor())
    versions.publish(earlier_release, own.reference, actor())

    assert active_version(services) == "1.0.5"
    assert listed(services) == {
        "2.0.0": ("draft", SHIPPED_UPLOADER),
        "1.1.0": ("retired", SHIPPED_UPLOADER),  # only the newest waits for the administrator
        "1.0.5": ("active", "Ada"),
        "1.0.0": ("retired", SHIPPED_UPLOADER),
    }
    patient = new_patient_id()
    evaluate_each(services, [pt_visit(patient, datetime.now(UTC) - timedelta(days=1))])
    assert pinned(services, patient) == f"{URL}|1.0.5"

    versions.publish(services, f"{URL}|2.0.0", actor())
    assert active_version(services) == "2.0.0"


def test_an_administrators_own_2_0_0_is_never_taken_for_the_shipped_one(
    earlier_release: Services, services: Services
) -> None:
    versions.upload(
        earlier_release, shipped_definition("2.0.0", pain_mcid=1, shipped=SHIPPED_VERSIONS[0]), "Ada", actor()
    )

    assert active_version(services) == "1.0.0"  # the shipped 2.0.0 cannot be listed under the same version
    assert listed(services) == {
        "2.0.0": ("draft", "Ada"),
        "1.1.0": ("retired", SHIPPED_UPLOADER),
        "1.0.0": ("active", SHIPPED_UPLOADER),
    }
    with transaction(services.db) as connection:
        theirs = services.definitions.get(connection, f"{URL}|2.0.0")
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

    assert listed(first) == ALL_SHIPPED_2_0_ACTIVE
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
