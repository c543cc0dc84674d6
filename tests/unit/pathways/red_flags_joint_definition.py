"""The joint red flags of spec 2.0 section 6 as definition data, and a test definition carrying them.

The data below is written in the shape of the definition YAML (the keys of pt-nonresponse 1.1.0,
plus those 2.0 adds), each item with its source, so that it can be lifted into the 2.0
definition as it stands. Codes: spec 2.0 section 6 and reference/joints/codes-joints.csv (every
SNOMED code there is verified, IPS free set; every ICD-10-CM family verified against the CDC
April 2026 tabular; LOCAL codes are the csv's proposed-local rows); no UNCONFIRMED code is used.

`JOINT_RED_FLAGS` is the shipped 1.1.0 data plus these additions. Red flags are read for the
patient, never for one episode line, so its checkpoint table and regions stay 1.1's; it gains
episode lines only because the joint diagnosis groups must name theirs (`line`), which the
every-open-episode rule reads.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import yaml

from pathways.definition import SHIPPED_VERSIONS, Definition
from pathways.model import ClinicalRecord
from pathways.state import PatientState
from tests.unit.pathways.timeline import Patient, day, load

# --- findings: spec 2.0 section 6 ---------------------------------------------------------------
FINDINGS_2_0: dict[str, Any] = {
    # major (stat): "one alone is an emergency"; routes: spec section 6 table, "Explanation route"
    "hot-swollen-joint": {
        "label": "hot swollen joint",
        "severity": "major",
        "codes": ["local|rf-hot-swollen-joint", "snomed|396234004", "snomed|239777004", "icd10cm|M00*"],
        "route": "same-day emergency assessment: suspected septic arthritis",
    },
    "dvt": {
        "label": "deep vein thrombosis",
        "severity": "major",
        "codes": [
            "local|rf-dvt-signs",
            "snomed|128053003",
            "snomed|404223003",
            "snomed|213220000",
            "icd10cm|I82.4*",
        ],
        "route": "same-day assessment: suspected DVT",
    },
    "suspected-fracture": {
        "label": "suspected fracture",
        "severity": "major",
        "codes": ["local|rf-suspected-fracture"],
        "route": "same-day imaging: suspected fracture",
    },
    "unreduced-dislocation": {
        "label": "unreduced dislocation",
        "severity": "major",
        "codes": ["local|rf-unreduced-dislocation"],
        "route": "same-day emergency assessment: suspected unreduced dislocation",
    },
    # urgent-alone: one alone makes the urgent severity (the cluster's Task and ServiceRequest)
    "acute-traumatic-cuff-tear": {
        "label": "suspected acute traumatic rotator cuff tear",
        "severity": "minor",  # age >= 65: a minor finding, v1 route
        "codes": ["local|rf-acute-traumatic-cuff-tear"],
        # age < 65 at the finding, birthDate unknown counts (spec section 6; ambiguities-joints.md A.6)
        "below_age": {
            "years": 65,
            "severity": "urgent-alone",
            "unknown_counts": True,
            "route": "urgent orthopaedic review: acute traumatic cuff tear",
        },
    },
    "locked-knee": {
        "label": "locked knee",
        "severity": "urgent-alone",
        "codes": ["local|rf-locked-knee"],
        "route": "urgent orthopaedic review: locked knee",
    },
    "bone-tumour": {
        "label": "suspected or confirmed bone tumour",
        "severity": "urgent-alone",
        "codes": [
            "local|rf-suspected-bone-tumour",
            "snomed|428281000",
            "snomed|94222008",
            "snomed|314990009",
            "icd10cm|C40*",
            "icd10cm|C41*",
            "icd10cm|C79.51*",
        ],
        "route": "urgent suspected-cancer review",
    },
    # minor (urgent as a cluster, v1 route)
    "unable-to-bear-weight": {
        "label": "unable to bear weight",
        "severity": "minor",
        "codes": ["local|rf-unable-to-bear-weight"],
    },
    "recent-trauma": {"label": "recent trauma", "severity": "minor", "codes": ["snomed|417746004"]},
    "calf-pain": {"label": "calf pain", "severity": "minor", "codes": ["snomed|300954003"]},
    # context (history: whatever its date and clinicalStatus, v1)
    "prosthetic-joint": {
        "label": "prosthetic joint",
        "severity": "context",
        "codes": ["icd10cm|Z96.61*", "icd10cm|Z96.64*", "icd10cm|Z96.65*"],
    },
    "long-term-steroids": {
        "label": "long-term systemic steroids",
        "severity": "context",
        "codes": ["icd10cm|Z79.52"],  # spec: "ICD Z79.52", a code, not a family
    },
    "sickle-cell": {
        "label": "sickle-cell disease",
        "severity": "context",
        # D57.3 (sickle-cell trait) is left out on purpose (reference-joints.md section 6)
        "codes": ["icd10cm|D57.0*", "icd10cm|D57.1*", "icd10cm|D57.2*", "icd10cm|D57.4*", "icd10cm|D57.8*"],
    },
    "alcohol-misuse": {
        "label": "alcohol misuse",
        "severity": "context",
        "codes": ["icd10cm|F10.1*", "icd10cm|F10.2*", "snomed|284591009", "snomed|371434005"],
    },
}

# --- diagnosis groups with expected signs: spec 2.0 sections 2.2-2.4 (codes in full) ------------------
# `structural` is the spine's surgical-consult flag; the joint roles (E, M, S, I) belong to the joint steps.
DIAGNOSES_2_0: dict[str, Any] = {
    "knee-oa": {  # spec 2.2
        "label": "knee osteoarthritis",
        "structural": False,
        "line": "knee",
        "codes": ["icd10cm|M17*", "snomed|239873007"],
    },
    "hip-oa": {  # spec 2.4
        "label": "hip osteoarthritis",
        "structural": False,
        "line": "hip",
        "codes": ["icd10cm|M16*", "snomed|239872002", "snomed|201835007", "snomed|77994009"],
    },
    "rotator-cuff-pain": {  # spec 2.3
        "label": "subacromial / rotator-cuff-related pain",
        "structural": False,
        "line": "shoulder",
        "codes": [
            "icd10cm|M75.10*",
            "icd10cm|M75.11*",
            "icd10cm|M75.2*",
            "icd10cm|M75.3*",
            "icd10cm|M75.4*",
            "icd10cm|M75.5*",
            "snomed|414033006",
            "snomed|442520000",
            "snomed|359532006",
            "snomed|239960007",
            "snomed|40799003",
            "snomed|239961006",
            "snomed|27741009",
            "snomed|202856007",
            "snomed|424175006",
            "snomed|926335004",
            "snomed|789758005",
            "snomed|307731004",
        ],
    },
    "full-thickness-cuff-tear": {  # spec 2.3
        "label": "full-thickness rotator cuff tear",
        "structural": False,
        "line": "shoulder",
        "codes": ["icd10cm|M75.12*", "icd10cm|S46.01*", "icd10cm|S46.02*", "snomed|202843000"],
    },
}

# --- steps.red-flags: what 2.0 adds --------------------------------------------------------------
# Spec 2.0 section 6, "Expected signs are not red flags on their own": the joint table. Muscle weakness
# is an expected sign of a shoulder diagnosis as SNOMED 26544005 only (102568007 "paresis of lower
# extremity" stays a red flag). The joint signs are read against every open episode's line; 1.1's
# radicular signs stay read for the patient whatever episodes are open (ruling 3).
_SHOULDER_SIGNS = {
    "signs": ["night-pain", {"finding": "muscle-weakness", "codes": ["snomed|26544005"]}],
    "every_open_line": True,
}
EXPECTED_SIGNS_2_0: dict[str, Any] = {
    "radicular": ["muscle-weakness", "sensory-change"],  # 1.1, unchanged
    "knee-oa": {"signs": ["night-pain"], "every_open_line": True},
    "hip-oa": {"signs": ["night-pain"], "every_open_line": True},
    "rotator-cuff-pain": _SHOULDER_SIGNS,
    "full-thickness-cuff-tear": _SHOULDER_SIGNS,
}
RED_FLAGS_2_0: dict[str, Any] = {
    "expected_signs": EXPECTED_SIGNS_2_0,
    "lower_waits_for_higher": True,  # spec 2.0 ruling 11
}
CLUSTER_ALONE_EXPLANATION = "Urgent red flag ({findings}): urgent physician re-evaluation."
"""`steps.red-flags.cluster.alone_explanation`: one urgent-alone finding is no cluster to name."""

# --- episode lines, abridged: enough for the groups above to name their line (spec 1.3, 2.1-2.4, 4) ----
LINES_2_0: dict[str, Any] = {
    "spine": {
        "label": "spine",
        "covers": ["lumbar", "cervical"],
        "codes": ["icd10cm|M54.50", "icd10cm|M54.2", "snomed|279039007"],
        "body_sites": ["snomed|122496007", "snomed|122494005"],
        "first_checkpoint_weeks": 6,
    },
    "knee": {
        "label": "knee",
        "codes": ["icd10cm|M25.56*", "snomed|1003722009"],
        "body_sites": ["snomed|72696002"],
        "first_checkpoint_weeks": 6,
        "min_age_years": 18,
    },
    "hip": {
        "label": "hip",
        "codes": ["icd10cm|M25.55*", "snomed|49218002"],
        "body_sites": ["snomed|29836001", "snomed|24136001"],
        "first_checkpoint_weeks": 8,
        "min_age_years": 18,
    },
    "shoulder": {
        "label": "shoulder",
        "codes": ["icd10cm|M25.51*", "snomed|45326000"],
        "body_sites": ["snomed|16982005", "snomed|85537004"],
        "first_checkpoint_weeks": 12,
        "min_age_years": 18,
    },
}


def shipped_1_1() -> Any:
    """The shipped 1.1.0 data; a JSON round trip makes YAML anchors independent copies."""
    return json.loads(json.dumps(yaml.safe_load(SHIPPED_VERSIONS[1].read_text())))


def joint_red_flags_data() -> Any:
    """1.1.0 with the joint red flags of spec 2.0 section 6 (a test definition, version 2.0.0-test)."""
    data = shipped_1_1()
    data["version"] = "2.0.0-redflags"
    data["findings"].update(json.loads(json.dumps(FINDINGS_2_0)))
    data["diagnoses"].update(json.loads(json.dumps(DIAGNOSES_2_0)))
    data["regions"]["lines"] = json.loads(json.dumps(LINES_2_0))
    red_flags = data["steps"]["red-flags"]
    red_flags.update(json.loads(json.dumps(RED_FLAGS_2_0)))
    red_flags["cluster"]["alone_explanation"] = CLUSTER_ALONE_EXPLANATION
    return data


JOINT_RED_FLAGS: Definition = load(joint_red_flags_data())


def live(
    records: list[ClinicalRecord],
    until: float,
    definition: Definition = JOINT_RED_FLAGS,
    *,
    birth_date: date | None = None,
    open_lines: tuple[str, ...] = (),
) -> Patient:
    """Feed `records` one at a time (clinical order) as the live worker does, for a patient whose
    birthDate and open episode lines are as given (the patient's episodes set `open_lines`)."""
    patient = Patient(definition)
    patient.state = PatientState(birth_date=birth_date, open_lines=open_lines)
    for record in sorted(records, key=lambda r: r.at):
        patient.receive(record)
    patient.advance(day(until))
    return patient
