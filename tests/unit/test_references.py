"""References to Carepath and to coordinators: by identifier until the EHR's id is known, then literal too."""

from __future__ import annotations

from typing import Any

import pytest

from pathways.fhir import references
from service.access.authenticate import Authenticator
from service.access.identity import AGENT_SYSTEM, COORDINATOR, OIDC, TOKEN, Identity
from tests.builders import AUTHOR

DEVICE = "Device/d-1"
AUTHOR_WITH_ID = {**AUTHOR, "reference": DEVICE}


@pytest.mark.parametrize(
    ("reference", "delivered"),
    [
        (AUTHOR, AUTHOR_WITH_ID),  # rendered by identifier: the Device's id added
        ({"reference": "Device/carepath", "display": "Carepath pathway engine"}, AUTHOR_WITH_ID),  # rendered before
        ({"reference": "Patient/p-1"}, {"reference": "Patient/p-1"}),
        ({**AUTHOR, "identifier": {**AUTHOR["identifier"], "value": "other"}}, None),  # another device: left alone
        (references.logical(AGENT_SYSTEM, "alice", "alice"), None),
    ],
)
def test_at_delivery_every_reference_to_carepath_gains_its_device_and_nothing_else_changes(
    reference: dict[str, Any], delivered: dict[str, Any] | None
) -> None:
    task = {"resourceType": "Task", "requester": reference, "input": [{"valueReference": reference}]}
    provenance = {"resourceType": "Provenance", "agent": [{"who": reference}], "target": [{"reference": "Task/t"}]}
    expected = reference if delivered is None else delivered
    assert references.with_literal(task, AUTHOR, DEVICE) == {
        "resourceType": "Task",
        "requester": expected,
        "input": [{"valueReference": expected}],
    }
    assert references.with_literal(provenance, AUTHOR, DEVICE)["agent"] == [{"who": expected}]
    assert references.with_literal(provenance, AUTHOR, DEVICE)["target"] == [{"reference": "Task/t"}]


@pytest.mark.parametrize(
    ("reference", "key"),
    [
        ({"reference": "Practitioner/p-1", "identifier": {"system": "s", "value": "v"}}, "Practitioner/p-1"),
        ({"identifier": {"system": "s", "value": "v"}, "display": "V"}, "s|v"),
        ({"display": "someone"}, None),
        (None, None),
    ],
)
def test_a_reference_is_keyed_by_its_literal_reference_else_its_identifier(
    reference: dict[str, Any] | None, key: str | None
) -> None:
    assert references.reference_key(reference) == key


def authenticator(**practitioners: str) -> Authenticator:
    return Authenticator(db=None, clock=None, practitioners=practitioners)  # type: ignore[arg-type]  # unused here


def test_a_token_name_mapped_to_a_practitioner_owns_tasks_as_that_practitioner() -> None:
    known = authenticator(alice="Practitioner/p-1").known_as(Identity("alice", COORDINATOR, TOKEN))
    assert known.owner == {"reference": "Practitioner/p-1", "display": "alice"}
    assert known.owner_key == "Practitioner/p-1"


def test_a_jwts_fhir_user_wins_over_the_mapping_and_an_unmapped_name_stays_logical() -> None:
    with_claim = Identity("alice", COORDINATOR, OIDC, reference="Practitioner/from-jwt")
    assert authenticator(alice="Practitioner/p-1").known_as(with_claim).owner["reference"] == "Practitioner/from-jwt"
    bob = authenticator(alice="Practitioner/p-1").known_as(Identity("bob", COORDINATOR, TOKEN))
    assert bob.owner == {"identifier": {"system": AGENT_SYSTEM, "value": "bob"}, "display": "bob"}
    assert bob.owner_key == f"{AGENT_SYSTEM}|bob"
