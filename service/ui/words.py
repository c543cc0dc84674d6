"""Human words for what the pathway names by key: step titles, facts, findings and the records behind them.

"Pain 7 on 6 Jul" rather than `Observation/pat-b-rf-1`; "Pain at baseline" rather than
`pain.baseline`. The labels come from the definition the patient is on, so they read as the
pathway's authors wrote them; a key the definition does not know is shown as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pathways.classify import classify
from pathways.definition.model import Definition
from pathways.model import ClinicalRecord

# What each part of a measure's evidence name says (`pain.baseline`, `odi.worse_by`): pathways/explain.py.
MEASURE_FACTS = {
    "baseline": "{} at baseline",
    "latest": "{}, latest",
    "evaluable": "{}: enough time to judge",
    "improvement": "{} improvement",
    "responded": "{}: responded",
    "best_since_response": "{}, best since the response",
    "worse_by": "{} worse by",
    "latest_pct": "{}, latest (%)",
}
FACTS = {
    "weeks_since_t0": "Weeks since the episode started",
    "pt_visits": "PT visits",
    "adherent": "Adherent to home exercise",
    "adherence": "Home-exercise adherence",
    "barriers": "Barriers to home exercise",
    "region": "Body region",
    "mri_contraindicated": "MRI contraindicated",
    "neurological_findings": "Neurological findings",
    "diagnosis_groups": "Diagnoses",
    "red_flag_findings": "Red-flag findings",
    "second_opinion": "Second opinion",
    "replaces": "Replaces",
}


def day(moment: datetime) -> str:
    """`6 Jul` this way round everywhere the UI names a clinical day; the year when it is not obvious."""
    return f"{moment.day} {moment:%b %Y}"


def step_title(definition: Definition, step_id: str) -> str:
    return next((s.title for s in definition.steps if s.id == step_id), step_id)


def step_titles(definition: Definition) -> dict[str, str]:
    return {s.id: s.title for s in definition.steps}


def fact_label(definition: Definition, name: str) -> str:
    """`pain.baseline` → "Pain at baseline"; `red_flag_findings` → "Red-flag findings"."""
    subject, _, part = name.partition(".")
    measures = {m.id: m.label for m in definition.measures}
    if part and part in MEASURE_FACTS:
        return MEASURE_FACTS[part].format(measures.get(subject) or FACTS.get(subject) or subject)
    return FACTS.get(name, name.replace("_", " ").capitalize())


def fact_value(definition: Definition, name: str, value: Any) -> Any:
    """Finding and diagnosis-group ids in a fact's value as their labels; anything else as it is."""
    labels = {f.id: f.label for f in definition.findings} | {g.id: g.label for g in definition.diagnoses}
    if name in ("red_flag_findings", "diagnosis_groups") and isinstance(value, list | tuple):
        return [labels.get(str(v), v) for v in value]
    return value


def record_labels(definition: Definition, records: Iterable[ClinicalRecord]) -> dict[str, str]:
    """Each record's reference → what it says, as the pathway reads it: "Pain 7 on 6 Jul 2026"."""
    return {r.source.reference: record_label(definition, r) for r in records}


def record_label(definition: Definition, record: ClinicalRecord) -> str:
    facts = classify(definition, record)
    on = day(record.at)
    measures = {m.id: m.label for m in definition.measures}
    said = [f"{measures.get(m, m)} {v:g}" for m, v in facts.measure_values]
    said += [definition.finding(f).label for f in facts.findings]
    said += [g.label for g in definition.diagnoses if g.id in facts.diagnosis_groups]
    if facts.pt_visit:
        said.append("PT visit")
    if facts.adherence_pct is not None:
        said.append(f"Home-exercise adherence {facts.adherence_pct:g} %")
    if facts.imaging_code is not None:
        said.append("Imaging")
    if facts.interventions:
        said.append(", ".join(i.replace("_", " ") for i in facts.interventions).capitalize())
    if not said:
        said.append(record.source.resource_type)
    return sentence(f"{', '.join(said)} on {on}")


def sentence(text: str) -> str:
    """Definitions write labels in lower case ("cauda equina"); a label that starts a line starts with a capital."""
    return text[:1].upper() + text[1:]


def sources(labels: Mapping[str, str], references: Iterable[str]) -> list[str]:
    """References as their records' labels; one Carepath no longer holds stays a reference."""
    return [labels.get(r, r) for r in references]
