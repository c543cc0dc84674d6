"""Building a `Definition` from parsed YAML: identity, code bindings, thresholds, then steps."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

from pathways.definition.codes import read_coding
from pathways.definition.due import KEY as DUE_KEY
from pathways.definition.due import read_task_due
from pathways.definition.line_rules import line_data, line_rule_sources, relocated
from pathways.definition.lines import LINE_KEYS, MEASURE_LINE, MEASURE_LINES, read_episode_lines
from pathways.definition.model import (
    CHECKPOINT_STEPS,
    FACT_STEPS,
    STEP_IDS,
    UNREAD,
    AdherenceStep,
    AdvancedImagingStep,
    Barrier,
    BelowAge,
    Better,
    CheckpointRow,
    CodeSet,
    Definition,
    DiagnosisGroup,
    EpisodeRules,
    Finding,
    ImagingStep,
    InjectionStep,
    Measure,
    MedicationStep,
    Neurological,
    PostOpStep,
    ProgressCheckStep,
    ProposingStep,
    ReassessmentStep,
    RedFlagsStep,
    Regions,
    RelapseStep,
    Severity,
    SurgicalConsultStep,
)
from pathways.definition.previous import PREVIOUS_KEYS, PreviousTable, is_previous
from pathways.definition.reader import DefinitionError, Node, Reader, join
from pathways.definition.steps import Context, read_steps
from pathways.definition.table import Names, TableReader

TOP_KEYS = (
    "url",
    "version",
    "name",
    "title",
    "status",
    "description",
    "systems",
    "episode",
    "measures",
    "facts",
    "barriers",
    "findings",
    "neurological",
    "diagnoses",
    "regions",
    "checkpoint_rows",
    "fact_steps",
    "steps",
)
FACT_KEYS = ("pt_visit", "adherence", "barrier", "mri_contraindicated", "injection", "imaging")
EPISODE_KEYS = ("baseline_window_days", "evaluable_after_days", "first_checkpoint_weeks")
OPTIONAL_EPISODE_KEYS = ("new_episode_after_days",)  # 1.1: new episodes
STATUSES = ("draft", "active", "retired", "unknown")  # FHIR PublicationStatus
STEP_ID = r"[a-z][a-z0-9-]{0,39}"
# Names no authored step may take: `episode-start` marks the first checkpoint of an episode (what
# `checkpoint_set_by` and the next-checkpoint rules read), and `relapse` is the relapse watch's step.
RESERVED_STEP_IDS = ("episode-start", "relapse")
"""An authored step id: it becomes a `meta.tag` code and part of every decision identifier."""

BELOW_AGE = "below_age"
"""2.0: a finding's class while the patient is younger than an age (spec section 6, acute traumatic cuff tear)."""

_PATTERNS = {
    "url": (r"https?://[^\s|]+", "must be an absolute http(s) URL without '|'"),
    "version": (r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?", "must be a semantic version such as 1.0.0"),
    "name": (r"[A-Z][A-Za-z0-9_]*", "must be a computer-friendly name starting with a capital letter"),
}


class Loader:
    """One pass over a definition's data; `build` raises `DefinitionError` listing every problem."""

    def __init__(self, data: Any, line: str | None = None) -> None:
        self.line = line
        """Set: read the definition as that episode line reads it, the line as its only region."""
        self.r = Reader()
        self.top = self.r.fields(data, "", TOP_KEYS, (DUE_KEY,))
        self.systems: dict[str, str] = {}

    def build(self) -> Definition:
        self.systems = self.read_systems()
        diagnoses = self.read_diagnoses()
        measures = self.read_measures()
        regions = self.read_regions(diagnoses, measures)
        findings = self.read_findings()
        episode = self.read_episode()
        group_ids = [g.id for g in diagnoses]
        authored = self.authored_ids()
        minor = [f.id for f in findings if f.severity is Severity.MINOR]
        previous = is_previous(self.top)
        lines = regions.episode_lines.lines if regions.episode_lines else ()
        context = Context(
            self.systems,
            group_ids,
            regions.ids,
            (*EPISODE_KEYS, *OPTIONAL_EPISODE_KEYS),
            authored,
            PREVIOUS_KEYS if previous else {},
            minor_findings=minor,
            findings=[f.id for f in findings],
            lines=[line.id for line in lines],
            radiograph_lines=[line.id for line in lines if line.radiographs.codings],
            finding_codes={f.id: f.codes for f in findings},
            lined_groups=[g.id for g in diagnoses if g.line],
        )
        steps = read_steps(self.r, self.top, "", context)
        conclusions = self.conclusions(steps)
        names = Names(
            steps=(*STEP_IDS, *authored),
            row_steps=(*CHECKPOINT_STEPS, *authored),
            diagnosis_groups=group_ids,
            structural_groups=[g.id for g in diagnoses if g.structural],
            findings=[f.id for f in findings],
            regions=regions.ids,
            conclusions=conclusions,
        )
        unlisted: tuple[CheckpointRow, ...] = ()
        if previous:
            reader = PreviousTable(self.r, names, steps)
            table = reader.rows(self.top)
            unlisted = reader.unlisted(self.top, table)
        else:
            table = TableReader(self.r, names).rows(self.top, "checkpoint_rows")
        facts = self.r.fields(self.top.get("facts", {}), "facts", FACT_KEYS)
        identity = self.identity()
        definition = Definition(
            url=identity["url"],
            version=identity["version"],
            name=identity["name"],
            title=identity["title"],
            status=identity["status"],
            description=identity["description"],
            episode=episode,
            measures=measures,
            pt_visit=self.code_set(facts, "pt_visit", "facts"),
            adherence_codes=self.code_set(facts, "adherence", "facts"),
            barrier_codes=self.code_set(facts, "barrier", "facts"),
            barriers=self.read_barriers(),
            mri_contraindicated=self.code_set(facts, "mri_contraindicated", "facts"),
            injection_codes=self.code_set(facts, "injection", "facts"),
            imaging_codes=self.code_set(facts, "imaging", "facts"),
            findings=findings,
            neurological=self.read_neurological(group_ids, minor),
            diagnoses=diagnoses,
            regions=regions,
            checkpoint_table=table,
            fact_steps=self.fact_steps((*table, *unlisted)),
            progress_check=cast(ProgressCheckStep, steps["progress-check"]),
            adherence=cast(AdherenceStep, steps["adherence"]),
            reassessment=cast(ReassessmentStep, steps["reassessment"]),
            imaging=cast(ImagingStep, steps["imaging"]),
            injection=cast(InjectionStep, steps["injection"]),
            medication=cast(MedicationStep, steps["medication"]),
            surgical_consult=cast(SurgicalConsultStep, steps["surgical-consult"]),
            red_flags=cast(RedFlagsStep, steps["red-flags"]),
            authored=tuple(cast(ProposingStep, steps[step_id]) for step_id in authored if step_id in steps),
            relapse=cast(RelapseStep, steps["relapse"]) if "relapse" in steps else None,
            post_op_pt=cast(PostOpStep, steps["post-op-pt"]) if "post-op-pt" in steps else None,
            unlisted_rows=unlisted,
            task_due=read_task_due(self.r, self.top),
            advanced_imaging=cast(AdvancedImagingStep, steps["advanced-imaging"])
            if "advanced-imaging" in steps
            else None,
            imaging_conclusion=cast(ProposingStep, steps.get("imaging-conclusion")),
        )
        self.named_steps_present(definition)
        if self.line is None and regions.episode_lines is not None:
            definition = replace(definition, line_definitions=self.line_definitions())
        if self.r.problems:
            raise DefinitionError(self.r.problems)
        return definition

    def line_definitions(self) -> tuple[tuple[str, Definition], ...]:
        """Each line with rules of its own, read by this Loader as a definition of that line alone."""
        regions = self.top.get("regions")
        found = []
        for source in line_rule_sources(self.r, regions if isinstance(regions, Mapping) else {}):
            try:
                found.append((source.line, Loader(line_data(self.top, source), source.line).build()))
            except DefinitionError as error:
                for problem in relocated(list(error.problems), source, self.top):
                    if problem not in self.r.problems:
                        self.r.problems.append(problem)
        return tuple(found)

    def conclusions(self, steps: Mapping[str, Any]) -> tuple[str, ...]:
        """The radiograph conclusions rows may name (2.0): the classes of `steps.imaging.regional`, and unread."""
        regional = cast(ImagingStep, steps["imaging"]).regional
        known = (*regional.conclusion_ids, UNREAD) if regional else ()
        advanced = steps.get("advanced-imaging")
        if isinstance(advanced, AdvancedImagingStep):
            path = join(join("steps", "advanced-imaging"), "fires_on_report")
            for index, conclusion in enumerate(advanced.fires_on_report):
                if conclusion not in known:
                    self.r.report(join(path, index), f"unknown conclusion {conclusion!r}")
        return known

    def named_steps_present(self, definition: Definition) -> None:
        """A 2.0 imaging step named by a checkpoint row or `fact_steps` must be configured under `steps`."""
        configured = {
            "advanced-imaging": definition.advanced_imaging,
            "imaging-conclusion": definition.imaging_conclusion,
        }
        for step_id, step in configured.items():
            if step is None and (step_id in definition.checkpoint_rows or step_id in definition.fact_steps):
                self.r.report(join("steps", step_id), "missing (a checkpoint row or fact_steps names it)")

    def identity(self) -> dict[str, str]:
        values = {key: self.r.text(self.top, key, "") for key in ("url", "version", "name", "title", "description")}
        for key, (pattern, reason) in _PATTERNS.items():
            if values[key] and not re.fullmatch(pattern, values[key]):
                self.r.report(key, reason)
        values["status"] = self.r.choice(self.top, "status", "", STATUSES)
        return values

    def read_systems(self) -> dict[str, str]:
        systems: dict[str, str] = {}
        for alias, uri, path in self.r.entries(self.top, "systems", ""):
            if not isinstance(uri, str) or not re.fullmatch(r"(https?|urn):\S+", uri):
                self.r.report(path, "must be a code system URI")
            else:
                systems[alias] = uri
        return systems

    def code_set(self, node: Node, key: str, path: str) -> CodeSet:
        """Codes matched against facts: ICD-10-CM families (`icd10cm|M17*`) allowed."""
        items = self.r.sequence(node, key, path)
        found = (read_coding(self.r, self.systems, item, p, family_allowed=True) for item, p in items)
        return CodeSet.of(c for c in found if c is not None)

    def read_episode(self) -> EpisodeRules:
        node = self.r.fields(self.top.get("episode", {}), "episode", EPISODE_KEYS, OPTIONAL_EPISODE_KEYS)
        gap = "new_episode_after_days"
        return EpisodeRules(
            baseline_window_days=self.r.integer(node, "baseline_window_days", "episode", 0, 365),
            evaluable_after_days=self.r.integer(node, "evaluable_after_days", "episode", 1, 365),
            first_checkpoint_weeks=self.r.integer(node, "first_checkpoint_weeks", "episode", 1, 104),
            new_episode_after_days=self.r.integer(node, gap, "episode", 1, 3650) if gap in node else None,
        )

    def read_measures(self) -> tuple[Measure, ...]:
        return tuple(self.measure(i, v, p) for i, v, p in self.r.entries(self.top, "measures", ""))

    def measure(self, measure_id: str, value: Any, path: str) -> Measure:
        node = self.r.fields(
            value,
            path,
            ("label", "codes", "better", "mcid_points"),
            ("mcid_percent", MEASURE_LINE, MEASURE_LINES, "range"),
        )
        percent = self.r.number(node, "mcid_percent", path, 0, 100) if "mcid_percent" in node else None
        return Measure(
            id=measure_id,
            label=self.r.text(node, "label", path),
            codes=self.code_set(node, "codes", path),
            better=Better(self.r.choice(node, "better", path, tuple(b.value for b in Better))),
            mcid_points=self.r.number(node, "mcid_points", path, 0, 100),
            mcid_percent=percent,
            names_line=self.r.text(node, MEASURE_LINE, path) if MEASURE_LINE in node else None,
            lines=tuple(str(item) for item, _ in self.r.sequence(node, MEASURE_LINES, path)),
            value_range=self.value_range(node, path) if "range" in node else None,
        )

    def value_range(self, node: Node, path: str) -> tuple[float, float] | None:
        """`range: [min, max]`: two numbers, the lower first (a scale of one point is allowed)."""
        items = self.r.sequence(node, "range", path)
        where = join(path, "range")
        numbers = [item for item, _ in items if isinstance(item, int | float) and not isinstance(item, bool)]
        if len(items) != 2 or len(numbers) != 2:
            self.r.report(where, "must be a list of two numbers: [min, max]")
            return None
        low, high = float(numbers[0]), float(numbers[1])
        if not math.isfinite(low) or not math.isfinite(high) or low > high:
            self.r.report(where, "must be finite numbers, the lower first")
            return None
        return (low, high)

    def read_barriers(self) -> tuple[Barrier, ...]:
        barriers = []
        for barrier_id, value, path in self.r.entries(self.top, "barriers", ""):
            node = self.r.fields(value, path, ("code", "label", "remedy"))
            code = read_coding(self.r, self.systems, node.get("code"), join(path, "code")) if "code" in node else None
            remedy = self.r.text(node, "remedy", path)
            if code is not None:
                barriers.append(Barrier(barrier_id, self.r.text(node, "label", path), code, remedy))
        return tuple(barriers)

    def read_findings(self) -> tuple[Finding, ...]:
        severities = tuple(s.value for s in Severity)
        findings = []
        for finding_id, value, path in self.r.entries(self.top, "findings", ""):
            node = self.r.fields(value, path, ("label", "severity", "codes"), ("route", BELOW_AGE))
            severity = Severity(self.r.choice(node, "severity", path, severities))
            codes = self.code_set(node, "codes", path)
            below_age = self.below_age(node[BELOW_AGE], join(path, BELOW_AGE), severity) if BELOW_AGE in node else None
            route = self.r.optional_text(node, "route", path)
            findings.append(Finding(finding_id, self.r.text(node, "label", path), severity, codes, route, below_age))
        return tuple(findings)

    def below_age(self, value: Any, path: str, severity: Severity) -> BelowAge:
        """A finding's class below an age (2.0): never context, which reads no date, and never its own class."""
        node = self.r.fields(value, path, ("years", "severity", "unknown_counts"), ("route",))
        classes = tuple(s.value for s in Severity if s is not Severity.CONTEXT)
        younger = Severity(self.r.choice(node, "severity", path, classes))
        if severity is Severity.CONTEXT:
            self.r.report(path, "a context finding counts whatever its date: it has no age rule")
        elif younger is severity:
            self.r.report(join(path, "severity"), f"is the finding's own severity ({severity.value})")
        return BelowAge(
            years=self.r.integer(node, "years", path, 1, 130),
            severity=younger,
            unknown_counts=self.r.boolean(node, "unknown_counts", path),
            route=self.r.optional_text(node, "route", path),
        )

    def read_neurological(self, group_ids: list[str], minor: list[str]) -> Neurological:
        node = self.r.fields(self.top.get("neurological", {}), "neurological", ("diagnosis_groups", "findings"))
        groups = self.r.names(node, "diagnosis_groups", "neurological", group_ids, "diagnosis group")
        names = self.r.names(node, "findings", "neurological", minor, "minor finding")
        return Neurological(groups, names)

    def read_diagnoses(self) -> tuple[DiagnosisGroup, ...]:
        groups = []
        for group_id, value, path in self.r.entries(self.top, "diagnoses", ""):
            node = self.r.fields(value, path, ("label", "codes", "structural"), ("line",))
            groups.append(
                DiagnosisGroup(
                    group_id,
                    self.r.text(node, "label", path),
                    self.code_set(node, "codes", path),
                    self.r.boolean(node, "structural", path),
                    self.r.text(node, "line", path) if "line" in node else None,
                )
            )
        return tuple(groups)

    def read_regions(self, diagnoses: tuple[DiagnosisGroup, ...], measures: tuple[Measure, ...]) -> Regions:
        # `by_code` may be left out: a definition of one region (a joint line's own view) has no other to name.
        node = self.r.fields(self.top.get("regions", {}), "regions", ("default",), ("by_code", *LINE_KEYS))
        default = self.r.text(node, "default", "regions", "default")
        by_code = []
        for region, value, path in self.r.entries(node, "by_code", "regions"):
            if region == default:
                self.r.report(path, "the default region needs no codes")
            by_code.append((region, self.code_set({region: value}, region, join("regions", "by_code"))))
        regions = Regions(default, tuple(by_code))
        if "lines" not in node:
            self.no_lines_named(diagnoses, measures)
            return regions
        lines = read_episode_lines(self.r, self.code_set, node, regions.ids, diagnoses, measures)
        if self.line is not None:  # the line is the episode's region; the 1.x regions are the spine's
            return Regions(self.line, (), lines)
        return replace(regions, episode_lines=lines)

    def no_lines_named(self, diagnoses: tuple[DiagnosisGroup, ...], measures: tuple[Measure, ...]) -> None:
        """Without `regions.lines` no group or measure may name one: it would silently mean nothing."""
        for group in diagnoses:
            if group.line is not None:
                self.r.report(
                    join(join("diagnoses", group.id), "line"), "names an episode line, but regions has no lines"
                )
        for measure in measures:
            if measure.names_line is not None or measure.lines:
                self.r.report(join("measures", measure.id), "names an episode line, but regions has no lines")

    def authored_ids(self) -> tuple[str, ...]:
        """Steps the checkpoint table names that Carepath does not build in: the definition authors them."""
        rows = self.top.get("checkpoint_rows")
        named = [row.get("step") for row in rows if isinstance(row, Mapping)] if isinstance(rows, list) else []
        ids = (
            s
            for s in named
            if isinstance(s, str) and re.fullmatch(STEP_ID, s) and s not in STEP_IDS and s not in RESERVED_STEP_IDS
        )
        return tuple(dict.fromkeys(ids))

    def fact_steps(self, table: tuple[CheckpointRow, ...]) -> tuple[str, ...]:
        names = self.r.names(self.top, "fact_steps", "", FACT_STEPS, "step id")
        if len(set(names)) != len(names):
            self.r.report("fact_steps", "lists a step twice")
        for step_id in ("injection", "advanced-imaging"):
            if step_id in names and not any(row.step == step_id for row in table):
                index = names.index(step_id)
                why = f"{step_id} needs a checkpoint row: its next checkpoint is read there"
                self.r.report(f"fact_steps[{index}]", why)
        if "post-op-pt" in names and "post-op-pt" not in self.top.get("steps", {}):
            self.r.report(f"fact_steps[{names.index('post-op-pt')}]", "post-op-pt needs its step under steps")
        return names


def build_definition(data: Mapping[str, Any] | Any) -> Definition:
    """A validated `Definition` from parsed YAML, or `DefinitionError` with every problem."""
    return Loader(data).build()
