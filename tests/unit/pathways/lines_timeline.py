"""A definition with episode lines for tests, and a driver that feeds a `RegionalState` as the live worker does.

`LINES` is pt-nonresponse 2.0.0 (pathways/definition/shipped): the spine is 1.1.0's,
so the engine of episode lines can be compared with 1.1's on the same rules, and the knee, hip and
shoulder read the joint rules. `lines_data` is the smaller definition the loader tests of line
rules build on: 1.1.0 with a spine, a knee and a shoulder line that run 1.1's table.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import yaml

from pathways.definition import SHIPPED_2_0, SHIPPED_VERSIONS, Definition, load_definition_file
from pathways.lines import engine as lines_engine
from pathways.lines.patient import RegionalState
from pathways.model import ClinicalRecord, Decision, Evaluation
from tests.unit.pathways.timeline import day, fired


def lines_data() -> Any:
    data = json.loads(json.dumps(yaml.safe_load(SHIPPED_VERSIONS[1].read_text())))
    data["version"] = "2.0.0-lines-test"
    data["regions"]["lines"] = {
        "spine": {
            "label": "spine",
            "covers": ["lumbar", "cervical"],
            "codes": [
                "icd10cm|M54.50",
                "icd10cm|M54.51",
                "icd10cm|M54.59",
                "icd10cm|M54.2",
                "snomed|279039007",
                "snomed|278862001",
                "snomed|278860009",
                "snomed|134407002",
                "snomed|81680005",
            ],
            "body_sites": ["snomed|122496007", "snomed|122494005"],
            "first_checkpoint_weeks": 6,
        },
        "knee": {
            "label": "knee",
            "codes": ["icd10cm|M17*", "icd10cm|M25.56*", "snomed|239873007"],
            "body_sites": ["snomed|72696002"],
            "first_checkpoint_weeks": 6,
            "min_age_years": 18,
        },
        "shoulder": {
            "label": "shoulder",
            "codes": ["icd10cm|M75*", "snomed|202843000"],
            "body_sites": ["snomed|16982005", "snomed|85537004"],
            "first_checkpoint_weeks": 12,
            "min_age_years": 18,
        },
    }
    data["regions"]["out_of_scope"] = ["icd10cm|M25.57*", "icd10cm|M77.0*"]
    for group in ("radicular", "disc-herniation", "stenosis", "instability", "fracture"):
        data["diagnoses"][group]["line"] = "spine"
    data["measures"]["koos-jr"] = {
        "label": "KOOS JR",
        "codes": ["loinc|82332-8"],
        "better": "higher",
        "mcid_points": 15,
        "line": "knee",
    }
    # Until the joint step table exists, the knee and shoulder run 1.1's table: their variants
    # reuse the lumbar wording, which these tests never read.
    for step in data["steps"].values():
        for proposal in step.get("proposals", []) if isinstance(step, dict) else []:
            variants = proposal.get("variants") if isinstance(proposal, dict) else None
            if variants and "lumbar" in variants:
                variants["knee"] = variants["lumbar"]
                variants["shoulder"] = variants["lumbar"]
    return data


LINES: Definition = load_definition_file(SHIPPED_2_0)
"""pt-nonresponse 2.0.0 (a draft, not yet served): the spine as 1.1.0, the joints with their own rules."""


class RegionalPatient:
    """Feeds records one at a time: due checkpoints first, a rebuild from every record when one is asked for."""

    def __init__(self, definition: Definition = LINES) -> None:
        self.definition = definition
        self.state = RegionalState()
        self.stored: dict[str, ClinicalRecord] = {}
        self.evaluations: list[Evaluation] = []

    def receive(self, record: ClinicalRecord, now: float | datetime | None = None) -> Evaluation:
        moment = record.at if now is None else (now if isinstance(now, datetime) else day(now))
        self.advance(min(record.at, moment), inclusive=False)
        self.stored[record.source.reference] = record
        try:
            self.state, evaluation = lines_engine.apply_record(self.definition, self.state, record, moment)
        except lines_engine.RebuildRequired:
            records = list(self.stored.values())
            self.state, evaluation = lines_engine.rebuild(self.definition, records, self.state, moment)
        self.evaluations.append(evaluation)
        return evaluation

    def advance(self, until: float | datetime, inclusive: bool = True) -> None:
        moment = until if isinstance(until, datetime) else day(until)
        while (due := self.state.checkpoint_due_at) is not None and (due < moment or (inclusive and due <= moment)):
            self.state, evaluation = lines_engine.run_checkpoint(self.definition, self.state, due)
            self.evaluations.append(evaluation)

    def close(self, decision: Decision, at: float | datetime) -> Evaluation:
        moment = at if isinstance(at, datetime) else day(at)
        self.advance(moment, inclusive=False)
        self.state, evaluation = lines_engine.close_task(self.definition, self.state, decision.key, moment)
        self.evaluations.append(evaluation)
        return evaluation

    @property
    def decisions(self) -> list[Decision]:
        return fired(self.evaluations)
