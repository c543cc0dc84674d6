"""The timeline chart and the pathway diagram are drawn from the definition and the patient's facts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pathways.definition import SHIPPED_1_1, load_definition_file
from pathways.model import ClinicalRecord, Coding, RecordStatus, SourceRef
from pathways.state import MeasureState, PatientState, Value
from service.ui import chart, diagram, timeline, words

SVG = "{http://www.w3.org/2000/svg}"
LOINC = "http://loinc.org"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
DEFINITION = load_definition_file(SHIPPED_1_1)  # the 1.x flow diagram; 2.0 draws a section per region


def record(
    resource_type: str, rid: str, at: datetime, code: Coding, value: float | None = None, **kw: object
) -> ClinicalRecord:
    return ClinicalRecord(
        source=SourceRef(resource_type, rid, "1"),
        patient_id="p1",
        at=at,
        status=kw.pop("status", RecordStatus.ACTIVE),  # type: ignore[arg-type]
        codes=(code,),
        value_number=value,
    )


VISIT = Coding("http://snomed.info/sct", "91251008")
PAIN = Coding(LOINC, "72514-3")
ODI = Coding(LOINC, "97909-6")


def pain_course() -> timeline.Timeline:
    records = [
        record("Encounter", "v1", T0, VISIT),
        record("Encounter", "v2", T0 + timedelta(weeks=1), VISIT),
        record("Observation", "p1", T0, PAIN, 8),
        record("Observation", "p2", T0 + timedelta(weeks=6), PAIN, 7),
        record("Observation", "gone", T0 + timedelta(weeks=3), PAIN, 1, status=RecordStatus.RETRACTED),
    ]
    state = PatientState(measures=(MeasureState("pain", Value(T0, 8, SourceRef("Observation", "p1")), None),))
    decided = [
        {"decided_at": T0 + timedelta(weeks=6), "step": "reassessment", "priority": "routine", "status": "active"}
    ]
    return timeline.build(DEFINITION, records, state, decided)


def test_the_mcid_target_is_the_easier_of_points_and_percent_below_the_baseline() -> None:
    pain = next(m for m in DEFINITION.measures if m.id == "pain")
    psfs = next(m for m in DEFINITION.measures if m.id == "psfs")
    assert timeline.mcid_target(pain, 8) == 6  # −2 points is easier than −30 % (2.4)
    assert timeline.mcid_target(pain, 5) == 3.5  # −30 % (1.5) is easier than −2 points
    assert timeline.mcid_target(psfs, 4) == 6  # higher is better: a rise of 2


def test_the_timeline_keeps_counting_facts_only_and_the_engines_baseline() -> None:
    course = pain_course()
    pain = next(s for s in course.series if s.measure_id == "pain")
    assert [p.value for p in pain.points] == [8, 7]  # the retracted value is not drawn
    assert (pain.baseline, pain.target) == (8, 6)
    assert len(course.visits) == 2
    assert [d.step for d in course.decisions] == ["reassessment"]


def test_the_chart_draws_the_target_as_a_dashed_line_below_the_baseline_with_visits_and_decisions() -> None:
    svg = ET.fromstring(str(chart.render(pain_course())))
    panel = next(g for g in svg.iter(f"{SVG}g") if g.get("data-measure") == "pain")
    target = next(line for line in panel.iter(f"{SVG}line") if line.get("class") == "target")
    baseline = next(line for line in panel.iter(f"{SVG}line") if line.get("class") == "baseline")
    assert float(target.get("y1", 0)) > float(baseline.get("y1", 0))  # lower value, lower on screen
    assert len(panel.findall(f"{SVG}circle")) == 2
    visits = next(g for g in svg.iter(f"{SVG}g") if g.get("class") == "visits")
    assert visits.get("data-count") == "2"
    assert [g.get("data-step") for g in svg.iter(f"{SVG}g") if g.get("class", "").split()[:1] == ["decision"]] == [
        "reassessment"
    ]
    assert "Pain from 8 to 7" in (svg.findtext(f"{SVG}desc") or "")


def test_the_chart_escapes_text_and_survives_a_patient_with_nothing_recorded() -> None:
    empty = timeline.Timeline(series=(), visits=(), decisions=())
    assert ET.fromstring(str(chart.render(empty))).tag == f"{SVG}svg"
    hostile = replace(pain_course().series[0], label="<script>x</script>")
    svg = str(chart.render(timeline.Timeline((hostile,), (), ())))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_the_diagram_draws_the_checkpoint_steps_in_order_with_red_flags_beside_them() -> None:
    svg = ET.fromstring(str(diagram.render(DEFINITION)))
    steps = [g.get("data-step") for g in svg.iter(f"{SVG}g") if g.get("class") == "step"]
    assert steps == list(DEFINITION.checkpoint_rows)
    arrows = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "arrow"]
    assert len(arrows) == len(steps) - 1
    lane = next(g for g in svg.iter(f"{SVG}g") if g.get("data-step") == "red-flags")
    assert [g.get("class") for g in lane.findall(f"{SVG}g")] == [
        "severity severity-stat",
        "severity severity-urgent",
        "severity severity-routine",
    ]
    text = " ".join(t.text or "" for t in svg.iter(f"{SVG}text"))
    assert "80 %" in text  # thresholds are the definition's, filled in


CAUDA = Coding("http://snomed.info/sct", "192970008")


def test_findings_are_plotted_by_name_and_the_value_axis_carries_the_unit_the_records_state() -> None:
    records = [
        record("Encounter", "v1", T0, VISIT),
        replace(record("Observation", "p1", T0, PAIN, 8), value_unit="{score}"),
        replace(record("Observation", "f1", T0 + timedelta(days=2), CAUDA), value_boolean=True),
    ]
    course = timeline.build(DEFINITION, records, None, [])
    assert [(e.kind, e.label) for e in course.events] == [("finding", "Cauda equina on 4 Mar 2026")]
    assert next(s for s in course.series if s.measure_id == "pain").unit == "score"
    assert course.has_measures
    svg = ET.fromstring(str(chart.render(course)))
    assert [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "axis-unit"] == ["score"]
    (event,) = [p for p in svg.iter(f"{SVG}polygon") if p.get("data-kind") == "finding"]
    assert event.find(f"{SVG}title").text == "Cauda equina on 4 Mar 2026"  # type: ignore[union-attr]


def test_a_patient_with_visits_only_has_no_measures_yet() -> None:
    course = timeline.build(DEFINITION, [record("Encounter", "v1", T0, VISIT)], None, [])
    assert not course.has_measures and course.visits == (T0,)


def test_records_and_facts_read_as_words_not_keys() -> None:
    pain = record("Observation", "p1", T0, PAIN, 7)
    assert words.record_label(DEFINITION, pain) == "Pain 7 on 2 Mar 2026"
    assert words.record_label(DEFINITION, record("Encounter", "v1", T0, VISIT)) == "PT visit on 2 Mar 2026"
    assert words.fact_label(DEFINITION, "pain.baseline") == "Pain at baseline"
    assert words.fact_label(DEFINITION, "odi.worse_by") == "ODI worse by"
    assert words.fact_label(DEFINITION, "red_flag_findings") == "Red-flag findings"
    assert words.fact_value(DEFINITION, "red_flag_findings", ["cauda-equina"]) == ["cauda equina"]
    assert words.sources({"Observation/p1": "Pain 7 on 2 Mar 2026"}, ["Observation/p1", "Observation/x"]) == [
        "Pain 7 on 2 Mar 2026",
        "Observation/x",
    ]
    assert words.step_title(DEFINITION, "red-flags") == "Red flags"
