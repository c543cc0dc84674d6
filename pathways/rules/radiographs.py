"""Imaging of a region imaged radiographs first (spec 2.0 section 5 and 5.4; settled readings 1 and 7).

A region is imaged so when the definition has `steps.imaging.regional` and the region's episode line
has radiograph codes. What counts is *recent*: dated within `recent_days` before the moment, whatever
the episode (ruling 1). A completed Procedure and a final report with radiograph codes of the
region, the report dated within `report_days` after the Procedure, are one radiograph read by the
report's conclusion; a Procedure no such report reads is *unread* (ruling 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pathways.classify import IMAGING
from pathways.definition.model import UNREAD, Definition, EpisodeLine, RegionalImaging
from pathways.explain import day, listing
from pathways.model import Coding
from pathways.rules import context
from pathways.rules.aggregate import version_number
from pathways.rules.run import Run
from pathways.state import Entry, PatientState

REPORT = "DiagnosticReport"


@dataclass(frozen=True, slots=True)
class Radiograph:
    """One radiograph: a report (with the Procedures it reads) or a Procedure no report reads yet."""

    at: datetime
    conclusion: str
    """A conclusion class of `steps.imaging.regional.conclusions`, or `unread`."""
    entries: tuple[Entry, ...]
    """The report first (when there is one), then the Procedures it reads."""

    @property
    def record(self) -> Entry:
        return self.entries[0]

    @property
    def is_report(self) -> bool:
        return self.record.source.resource_type == REPORT


def imaging_line(definition: Definition, region: str) -> EpisodeLine | None:
    """The episode line of `region` when the definition images it radiographs first, else None (spine, 1.x)."""
    lines = definition.regions.episode_lines
    if definition.imaging.regional is None or lines is None or region not in lines.ids:
        return None
    line = lines.line(region)
    return line if line.radiographs.codings else None


def regional(definition: Definition) -> RegionalImaging:
    """The regional imaging rules; only called once `imaging_line` found a line, so they are set."""
    rules = definition.imaging.regional
    assert rules is not None
    return rules


def _of(state: PatientState, codes: Sequence[Coding], moment: datetime) -> list[Entry]:
    keys = {c.key for c in codes}
    return [i for i in state.interventions if i.name == IMAGING and i.code in keys and i.at <= moment]


def _latest_first(entry: Entry) -> tuple[datetime, int, str]:
    """v1 tie rule: the latest clinical time, then the highest versionId, then the resource id last."""
    return (entry.at, version_number(entry.source.version_id), entry.source.resource_id)


def _recent(definition: Definition, at: datetime, moment: datetime) -> bool:
    return moment - timedelta(days=regional(definition).recent_days) <= at <= moment


def radiographs(definition: Definition, state: PatientState, line: EpisodeLine, moment: datetime) -> list[Radiograph]:
    """The recent radiographs of the line at `moment`, latest last (v1 tie rule)."""
    window = timedelta(days=regional(definition).report_days)
    entries = sorted(_of(state, line.radiographs.codings, moment), key=_latest_first)
    reports = [e for e in entries if e.source.resource_type == REPORT]
    read: dict[str, list[Entry]] = {r.source.reference: [] for r in reports}
    found: list[Radiograph] = []
    for procedure in (e for e in entries if e.source.resource_type != REPORT):
        report = next((r for r in reports if procedure.at <= r.at <= procedure.at + window), None)
        if report is None:
            found.append(Radiograph(procedure.at, UNREAD, (procedure,)))
        else:
            read[report.source.reference].append(procedure)
    found += [Radiograph(r.at, r.detail or UNREAD, (r, *read[r.source.reference])) for r in reports]
    return sorted((r for r in found if _recent(definition, r.at, moment)), key=lambda r: _latest_first(r.record))


def latest_radiograph(run: Run, region: str) -> Radiograph | None:
    line = imaging_line(run.definition, region)
    found = radiographs(run.definition, run.state, line, run.now) if line else []
    return found[-1] if found else None


def recent_radiographs(run: Run, region: str) -> list[Radiograph]:
    line = imaging_line(run.definition, region)
    return radiographs(run.definition, run.state, line, run.now) if line else []


def recent_advanced_imaging(run: Run, region: str, since: datetime | None = None) -> tuple[Entry, ...]:
    """Completed advanced imaging of the region (Procedure or final report) in the recent window (and since `since`)."""
    line = imaging_line(run.definition, region)
    if line is None:
        return ()
    found = _of(run.state, line.advanced_imaging.codings, run.now)
    return tuple(e for e in found if _recent(run.definition, e.at, run.now) and (since is None or e.at >= since))


def region_imaging_on_record(run: Run, region: str) -> tuple[Entry, ...]:
    """*Region imaging on record*: the records of every recent radiograph and recent advanced imaging."""
    studies = [e for r in recent_radiographs(run, region) for e in r.entries]
    return (*studies, *recent_advanced_imaging(run, region))


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Whether the region is imaging-eligible at the moment, why, and the facts it rests on."""

    holds: bool
    reason: str
    facts: tuple[Entry, ...] = ()


def imaging_eligible(run: Run, region: str) -> Eligibility:
    """Spec 2.0 section 5: reassessment has fired, or a finding listed for the region is on record.

    Rows are tried only for a patient who has not responded at this checkpoint, which the other
    half of the definition asks for.
    """
    if run.state.has_fired("reassessment"):
        return Eligibility(True, "reassessment has fired")
    listed = regional(run.definition).eligible_findings(region) if run.definition.imaging.regional else ()
    found = context.findings(run.definition, run.state, listed, run.now) if listed else ()
    if found:
        labels = listing([run.definition.finding(f.name).label for f in found])
        return Eligibility(True, f"{labels} on record, which makes the {region} imaging-eligible", found)
    if not listed:
        return Eligibility(False, "reassessment has not fired")
    wanted = listing([run.definition.finding(name).label for name in listed], "or")
    return Eligibility(False, f"reassessment has not fired and no {wanted} on record")


def study_name(definition: Definition, line: EpisodeLine, entry: Entry) -> str:
    """The study as the definition names it (`X-ray knee, 3 views`), else `radiograph` or `advanced imaging`."""
    for codes, fallback in ((line.radiographs, "radiograph"), (line.advanced_imaging, "advanced imaging")):
        coding = next((c for c in codes.codings if c.key == entry.code), None)
        if coding is not None:
            return coding.display or f"{line.label} {fallback}"
    return "imaging"


def radiograph_words(definition: Definition, region: str, radiograph: Radiograph) -> str:
    """e.g. `X-ray knee, 3 views 2026-03-20, read as negative` or `… 2026-03-20, no conclusion recorded`."""
    line = imaging_line(definition, region)
    name = study_name(definition, line, radiograph.record) if line else "radiograph"
    if radiograph.conclusion == UNREAD:
        return f"{name} {day(radiograph.at)}, no conclusion recorded"
    return f"{name} {day(radiograph.at)}, read as {regional(definition).label(radiograph.conclusion)}"
