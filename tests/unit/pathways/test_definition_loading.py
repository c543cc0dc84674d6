"""Loading definitions: the shipped one, and broken ones rejected with exact paths and reasons."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathways.definition import (
    SHIPPED_1_1,
    DefinitionError,
    default_definition,
    load_definition_file,
    load_definition_text,
)
from pathways.definition.codes import loinc_valid, verhoeff_valid
from pathways.model import Priority


def shipped_data() -> Any:
    # JSON round trip: YAML anchors become independent copies, so one mutation changes one place
    return json.loads(json.dumps(yaml.safe_load(SHIPPED_1_1.read_text())))


def problems_of(data: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True))
    return [str(p) for p in caught.value.problems]


def at(data: Any, path: str) -> tuple[Any, str | int]:
    """The container and key of a dotted path such as `steps.adherence.proposals[0]`."""
    keys: list[str | int] = []
    for part in path.split("."):
        name, *indexes = re.split(r"\[(-?\d+)\]", part)
        keys += [name] + [int(i) for i in indexes if i != ""]
    for key in keys[:-1]:
        data = data[key]
    return data, keys[-1]


def setting(path: str, value: Any) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        container, key = at(data, path)
        container[key] = value

    return change


def removing(path: str) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        container, key = at(data, path)
        del container[key]

    return change


def test_the_shipped_definition_loads_with_its_identity_and_thresholds() -> None:
    assert default_definition().reference == "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|2.0.0"
    definition = load_definition_file(SHIPPED_1_1)
    assert definition.reference == "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.1.0"
    assert definition.id == "pt-nonresponse"
    assert definition.episode.first_checkpoint_weeks == 6
    assert [(m.id, m.mcid_points, m.mcid_percent) for m in definition.measures] == [
        ("pain", 2, 30),
        ("odi", 10, 30),
        ("psfs", 2, None),
    ]
    assert (definition.adherence.min_adherence_pct, definition.adherence.min_pt_visits) == (80, 4)
    assert definition.red_flags.major.propose.priority is Priority.STAT
    assert definition.structural_groups == ("disc-herniation", "stenosis", "instability", "fracture")
    assert default_definition() is default_definition()  # loaded once


def test_definitions_are_frozen() -> None:
    with pytest.raises(AttributeError):
        default_definition().version = "2.0.0"  # type: ignore[misc]


def test_a_definition_loads_from_a_file_or_from_text(tmp_path: Path) -> None:
    copy = tmp_path / "copy.yaml"
    copy.write_text(SHIPPED_1_1.read_text())
    assert load_definition_file(copy) == load_definition_text(SHIPPED_1_1.read_text())


def test_a_definition_on_one_line_of_json_loads_like_its_yaml() -> None:
    one_line = json.dumps(shipped_data())
    assert "\n" not in one_line
    assert load_definition_text(one_line) == load_definition_file(SHIPPED_1_1)


def test_text_that_names_a_file_is_parsed_as_text_never_read_as_a_path() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(str(SHIPPED_1_1))
    assert str(caught.value.problems[0]) == "(top): must be a mapping"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            setting("steps.adherence.min_adherence_pct", 180),
            "steps.adherence.min_adherence_pct: must be between 0 and 100",
        ),
        (setting("steps.adherence.min_adherence_pct", "80"), "steps.adherence.min_adherence_pct: must be a number"),
        (setting("steps.adherence.min_pt_visits", 4.5), "steps.adherence.min_pt_visits: must be an integer"),
        (setting("steps.adherence.colour", "red"), "steps.adherence.colour: unknown key"),
        (removing("steps.adherence.min_pt_visits"), "steps.adherence.min_pt_visits: missing"),
        (removing("steps.imaging"), "steps.imaging: missing"),
        (setting("colour", "red"), "colour: unknown key"),
        (setting("version", "1.0"), "version: must be a semantic version such as 1.0.0"),
        (setting("url", "pt nonresponse"), "url: must be an absolute http(s) URL without '|'"),
        (setting("status", "live"), "status: must be one of: draft, active, retired, unknown"),
        (setting("episode.first_checkpoint_weeks", 0), "episode.first_checkpoint_weeks: must be between 1 and 104"),
        (setting("measures.pain.better", "down"), "measures.pain.better: must be one of: lower, higher"),
        (setting("measures.odi.codes", "loinc|97909-6"), "measures.odi.codes: must be a list"),
        (setting("measures.odi.codes", []), "measures.odi.codes: must not be empty"),
        (
            setting("facts.pt_visit[0]", "snomed|91251009"),
            "facts.pt_visit[0]: snomed|91251009 fails the SNOMED CT Verhoeff check digit",
        ),
        (
            setting("measures.pain.codes[0]", "loinc|72514-4"),
            "measures.pain.codes[0]: loinc|72514-4 fails the LOINC mod-10 check digit",
        ),
        (
            setting("findings.fever.codes[0]", "snomd|386661006"),
            "findings.fever.codes[0]: unknown code system 'snomd' (declare it under systems)",
        ),
        (
            setting("diagnoses.instability.codes[0]", "snomed|UNCONFIRMED"),
            "diagnoses.instability.codes[0]: snomed|UNCONFIRMED is an UNCONFIRMED placeholder, not a code",
        ),
        (
            setting("diagnoses.fracture.codes[5]", "icd10cm|s32"),
            "diagnoses.fracture.codes[5]: icd10cm|s32 is not an ICD-10-CM code",
        ),
        (
            setting("diagnoses.fracture.codes[5]", "snomed|50448004*"),
            "diagnoses.fracture.codes[5]: snomed|50448004* is a family: only ICD-10-CM codes form families "
            "(other systems match exactly)",
        ),
        (
            setting("diagnoses.fracture.codes[5]", "icd10cm|s3*"),
            "diagnoses.fracture.codes[5]: icd10cm|s3* is not an ICD-10-CM code",
        ),
        (
            setting("steps.medication.proposals[0].codes[0]", "icd10cm|M17*"),
            "steps.medication.proposals[0].codes[0]: icd10cm|M17* is a family: only codes matched against facts "
            "may be families, never codes sent",
        ),
        (setting("facts.injection[0]", "cpt|623"), "facts.injection[0]: cpt|623 is not a CPT code (5 characters)"),
        (
            setting("facts.imaging[0]", 72148),
            "facts.imaging[0]: must be a code written as system-alias|code or system-alias|code|display",
        ),
        (setting("checkpoint_rows[6]", "triage"), "checkpoint_rows[6]: unknown step id 'triage'"),
        (setting("fact_steps", ["imaging"]), "fact_steps[0]: unknown step id 'imaging'"),
        (
            setting("steps.medication.diagnosis_groups[1]", "chronic"),
            "steps.medication.diagnosis_groups[1]: unknown diagnosis group 'chronic'",
        ),
        (
            setting("neurological.findings", ["cauda-equina"]),
            "neurological.findings[0]: unknown minor finding 'cauda-equina'",
        ),
        (
            setting("findings.fever.severity", "severe"),
            "findings.fever.severity: must be one of: major, minor, context, urgent-alone, clinical",
        ),
        (
            setting("steps.red-flags.major.priority", "critical"),
            "steps.red-flags.major.priority: must be one of: routine, urgent, asap, stat",
        ),
        (
            removing("steps.imaging.proposals[0].variants.cervical"),
            "steps.imaging.proposals: item 'mri' needs a variant 'cervical'",
        ),
        (
            setting("steps.reassessment.second_opinion[2]", {"variant": "orthopaedic", "when_diagnosis": "fracture"}),
            "steps.reassessment.second_opinion: the last choice must have no condition",
        ),
        (
            setting("regions.by_code.lumbar", ["snomed|18347007"]),
            "regions.by_code.lumbar: the default region needs no codes",
        ),
        (
            setting("steps.progress-check.proposals[0].item", "todo"),
            "steps.progress-check.proposals: needs an item 'task'",
        ),
        (
            setting("steps.progress-check.proposals[0].kind", "Order"),
            "steps.progress-check.proposals[0].kind: must be one of: Task, ServiceRequest",
        ),
    ],
)
def test_a_broken_definition_is_rejected_with_the_exact_path_and_reason(
    change: Callable[[Any], None], problem: str
) -> None:
    data = shipped_data()
    change(data)
    assert problem in problems_of(data)


def test_an_unknown_step_id_is_reported_with_the_known_ones() -> None:
    data = shipped_data()
    data["steps"]["triage"] = {}
    found = [p for p in problems_of(data) if p.startswith("steps.triage:")]
    assert found == [
        "steps.triage: unknown step id 'triage'; known: progress-check, adherence, reassessment, "
        "imaging, injection, medication, surgical-consult, red-flags, relapse, post-op-pt, advanced-imaging, "
        "imaging-conclusion"
    ]


def test_an_unknown_placeholder_in_wording_is_reported() -> None:
    data = shipped_data()
    data["steps"]["medication"]["explanation"] = "{diagnosis} on record"
    assert (
        "steps.medication.explanation: unknown placeholder {diagnosis}; allowed: measures, weeks, visits, "
        "adherence, t0, region, imaging, diagnoses" in problems_of(data)
    )


def test_every_problem_is_reported_at_once() -> None:
    data = shipped_data()
    data["steps"]["adherence"]["min_adherence_pct"] = -1
    data["episode"]["baseline_window_days"] = "two weeks"
    del data["steps"]["injection"]
    assert set(problems_of(data)) >= {
        "steps.adherence.min_adherence_pct: must be between 0 and 100",
        "episode.baseline_window_days: must be an integer",
        "steps.injection: missing",
    }


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    assert problems_of(["a", "list"])[0] == "(top): must be a mapping"


def test_duplicate_keys_and_bad_yaml_are_rejected_with_their_line() -> None:
    with pytest.raises(DefinitionError, match=r"\(line 2\): duplicate key 'version'"):
        load_definition_text("version: 1.0.0\nversion: 2.0.0\n")
    with pytest.raises(DefinitionError, match=r"\(line 2\): not valid YAML"):
        load_definition_text("url: a\nversion: b: c\n")
    with pytest.raises(DefinitionError, match="not valid YAML: special characters are not allowed"):
        load_definition_text('{"source": "\u00f7B\u001a"}')  # a control character YAML forbids: refused, not a 500


def test_an_unreadable_path_is_a_definition_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot be read"):
        load_definition_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize("code", ["91251008", "394451000119106", "192970008", "308481009"])
def test_snomed_check_digits_of_shipped_codes_pass(code: str) -> None:
    assert verhoeff_valid(code)
    assert not verhoeff_valid(code[:-1] + str((int(code[-1]) + 1) % 10))


@pytest.mark.parametrize("code", ["91251008", "394451000119106"])
def test_the_snomed_check_catches_every_mistyped_digit_and_every_swap_of_neighbours(code: str) -> None:
    for position, digit in enumerate(code):
        for wrong in set("0123456789") - {digit}:
            assert not verhoeff_valid(code[:position] + wrong + code[position + 1 :])
    for position in range(len(code) - 1):
        swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
        assert swapped == code or not verhoeff_valid(swapped)


@pytest.mark.parametrize(("code", "valid"), [("72514-3", True), ("97909-6", True), ("30797-1", False)])
def test_loinc_check_digits(code: str, valid: bool) -> None:
    assert loinc_valid(code) is valid


def test_every_number_in_the_shipped_definition_names_its_source() -> None:
    unsourced = [
        line.strip()
        for line in SHIPPED_1_1.read_text().splitlines()
        if re.match(r"\s*[a-z_]+: [0-9.]+\s*(#.*)?$", line)
        and not line.startswith("version:")
        and not re.search(r"#.*\b(spec|ref)\b", line)
    ]
    assert unsourced == []
