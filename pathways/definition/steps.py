"""Reading the `steps` section of a definition: thresholds, proposal templates and wording."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pathways.definition.codes import read_coding
from pathways.definition.model import (
    CONDITION_CLINICAL_STATUSES,
    COUNTING_CLINICAL_STATUSES,
    UNREAD,
    AdherenceStep,
    AdvancedImagingStep,
    CodeSet,
    ConclusionClass,
    CtInstead,
    ExpectedSign,
    ExpectedSigns,
    ImagingStep,
    InjectionStep,
    MedicationStep,
    MriAlternative,
    PostOpStep,
    ProgressCheckStep,
    ProposalTemplate,
    Proposing,
    ProposingStep,
    Qualifier,
    ReassessmentStep,
    RedFlagsStep,
    RegionalImaging,
    RelapseStep,
    SeverityRule,
    SpecialtyRule,
    Step,
    SurgicalConsultStep,
    Variant,
    YoungTraumatic,
)
from pathways.definition.reader import Node, Reader, join, shown
from pathways.model import Coding, Priority, ProposalKind

COMMON_WORDS = ("measures", "weeks", "visits", "adherence", "t0", "region", "imaging")
"""Placeholders every step's wording may use; each step adds its own (`STEP_WORDS`)."""

STEP_WORDS: dict[str, tuple[str, ...]] = {
    "progress-check": (),
    "adherence": ("remedies",),
    "reassessment": ("verdict", "specialty"),
    "imaging": ("studies",),
    "injection": ("diagnoses",),
    "medication": ("diagnoses",),
    "surgical-consult": ("diagnoses", "specialty", "context"),
    "red-flags": ("findings",),
    "relapse": ("relapse",),
    "post-op-pt": ("procedure",),
    "advanced-imaging": ("studies", "radiograph"),
    "imaging-conclusion": ("radiograph",),
}
"""Placeholders of the built-in steps; a step a definition authors has the common ones only."""

CT_INSTEAD_WORDS = ("studies", "contraindicated_on")
"""Placeholders of `steps.imaging.ct_instead`: the CT proposed and the day(s) the contraindication was recorded."""

REGIONAL_WORDS = ("studies", "eligibility")
"""Placeholders of `steps.imaging.regional.explanation`: the radiographs proposed and why the region is imaged."""

RADIOGRAPHS = "radiographs"
"""The `imaging` item a region imaged radiographs first proposes (spec 2.0 5.4), with a variant per such region."""
MRI_ITEMS = ("mri", "ct")

CONDITION_WORDS = ("groups", "fact_groups")
"""Placeholders of `applies_when` besides the step's and the episode's own numbers."""

# Red-flag keys of 2.0 (spec section 6 and ruling 11); a definition without them reads red flags as 1.x.
LOWER_WAITS = "lower_waits_for_higher"
EVERY_OPEN_LINE = "every_open_line"
URGENT_SEVERITY = "cluster"
"""The urgent severity: a cluster of minor findings, or (2.0) one urgent-alone finding."""
ALONE_EXPLANATION = "alone_explanation"

_STEP_KEYS = ("title", "description", "applies_when")
_PROPOSING_KEYS = ("priority", "proposals", "explanation")
_PRIORITIES = tuple(p.value for p in Priority)


@dataclass(frozen=True, slots=True)
class Context:
    """What step reading needs from the rest of the definition."""

    systems: Mapping[str, str]
    diagnosis_groups: Sequence[str]
    regions: Sequence[str]
    episode_numbers: Sequence[str]
    authored: Sequence[str] = ()
    """Step ids the checkpoint table names besides the built-in ones: read as authored steps."""
    previous_keys: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """In the previous format, each step's next-checkpoint keys (see `pathways.definition.previous`)."""
    minor_findings: Sequence[str] = ()
    """Ids of the minor findings: the only ones that can be expected signs of a diagnosis."""
    findings: Sequence[str] = ()
    """Ids of every finding, for the rules of 2.0 that read one (inflammatory features, recent trauma)."""
    lines: Sequence[str] = ()
    """2.0: the episode lines' ids (regions too: a line's episode has the line's id as its region)."""
    radiograph_lines: Sequence[str] = ()
    """2.0: the lines with radiograph codes: imaged radiographs first when `steps.imaging.regional` is set."""
    finding_codes: Mapping[str, CodeSet] = field(default_factory=dict)
    """Each finding's codes: an expected sign narrowed to some codes names codes of its finding only."""
    lined_groups: Sequence[str] = ()
    """Diagnosis groups with an episode line (2.0): only their signs can be read against every open line."""


class StepReader:
    """Reads each known step from its node, reporting problems to a shared `Reader`."""

    def __init__(self, reader: Reader, context: Context) -> None:
        self.r = reader
        self.context = context

    def fields(
        self, node: Any, path: str, extra: Sequence[str], proposing: bool = True, optional: Sequence[str] = ()
    ) -> Node:
        keys = (*_STEP_KEYS, *(_PROPOSING_KEYS if proposing else ()), *extra)
        return self.r.fields(node, path, keys, optional)

    def previous(self, step_id: str) -> tuple[str, ...]:
        """The keys the step carries in the previous format of the checkpoint table (required there)."""
        return tuple(self.context.previous_keys.get(step_id, ()))

    def base(self, step_id: str, node: Node, path: str) -> dict[str, Any]:
        numbers = [k for k, v in node.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        allowed = (*numbers, *self.context.episode_numbers, *CONDITION_WORDS)
        applies_when = self.r.text(node, "applies_when", path)
        self.placeholders(applies_when, join(path, "applies_when"), allowed)
        return {
            "id": step_id,
            "title": self.r.text(node, "title", path),
            "description": self.r.text(node, "description", path),
            "applies_when": applies_when,
        }

    def placeholders(self, text: str, path: str, allowed: Sequence[str]) -> None:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as error:
            self.r.report(path, f"bad placeholder syntax ({error})")
            return
        for name in names:
            if name not in allowed:
                self.r.report(path, f"unknown placeholder {{{name}}}; allowed: {', '.join(allowed)}")

    def proposing(self, step_id: str, node: Node, path: str, words: Sequence[str] = ()) -> Proposing:
        allowed = (*COMMON_WORDS, *STEP_WORDS.get(step_id, ()), *words)
        explanation = self.r.text(node, "explanation", path)
        self.placeholders(explanation, join(path, "explanation"), allowed)
        priority = Priority(self.r.choice(node, "priority", path, _PRIORITIES))
        templates = tuple(
            self.template(item, item_path, allowed) for item, item_path in self.r.sequence(node, "proposals", path)
        )
        self.unique_items(templates, join(path, "proposals"))
        return Proposing(priority, templates, explanation)

    def unique_items(self, templates: Sequence[ProposalTemplate], path: str) -> None:
        seen: set[str] = set()
        for index, template in enumerate(templates):
            if template.item in seen:
                self.r.report(join(join(path, index), "item"), f"duplicate item {template.item!r}")
            seen.add(template.item)

    def template(self, value: Any, path: str, allowed: Sequence[str]) -> ProposalTemplate:
        optional = ("codes", "performer", "note", "variants", "reason_codes")
        node = self.r.fields(value, path, ("item", "kind", "text"), optional)
        text = self.r.text(node, "text", path)
        self.placeholders(text, join(path, "text"), allowed)
        variants = tuple(
            self.variant(name, item, item_path) for name, item, item_path in self.r.entries(node, "variants", path)
        )
        if ("codes" in node) == ("variants" in node):
            self.r.report(path, "needs either codes or variants")
        return ProposalTemplate(
            item=self.r.text(node, "item", path),
            kind=ProposalKind(self.r.choice(node, "kind", path, tuple(k.value for k in ProposalKind))),
            text=text,
            codes=self.codes(node, "codes", path),
            performer=self.coding(node, "performer", path),
            note=self.r.optional_text(node, "note", path),
            variants=variants,
            reason_codes=self.codes(node, "reason_codes", path) if "reason_codes" in node else (),
        )

    def variant(self, key: str, value: Any, path: str) -> Variant:
        node = self.r.fields(value, path, ("label", "codes"), ("performer",))
        return Variant(
            key, self.r.text(node, "label", path), self.codes(node, "codes", path), self.coding(node, "performer", path)
        )

    def codes(self, node: Node, key: str, path: str) -> tuple[Coding, ...]:
        found = (read_coding(self.r, self.context.systems, item, p) for item, p in self.r.sequence(node, key, path))
        return tuple(c for c in found if c is not None)

    def coding(self, node: Node, key: str, path: str) -> Coding | None:
        return read_coding(self.r, self.context.systems, node[key], join(path, key)) if key in node else None

    def groups(self, node: Node, key: str, path: str) -> tuple[str, ...]:
        return self.r.names(node, key, path, self.context.diagnosis_groups, "diagnosis group")

    def days(self, node: Node, key: str, path: str) -> int:
        return self.r.integer(node, key, path, 0, 365)

    def finding_ids(self, node: Node, key: str, path: str) -> tuple[str, ...]:
        return self.r.names(node, key, path, self.context.findings, "finding") if key in node else ()

    def optional_groups(self, node: Node, key: str, path: str) -> tuple[str, ...]:
        return self.groups(node, key, path) if key in node else ()

    def items_by_group(self, node: Node, path: str, propose: Proposing) -> tuple[tuple[str, str], ...]:
        """2.0: `items_by_group` — a mapping of diagnosis group to the proposal item made for it, in order."""
        pairs = []
        items = {t.item for t in propose.proposals}
        for group, item, item_path in self.r.entries(node, "items_by_group", path):
            if group not in self.context.diagnosis_groups:
                self.r.report(item_path, f"unknown diagnosis group {shown(group)}")
            if item not in items:
                self.r.report(item_path, f"unknown proposal item {shown(item)}")
            pairs.append((group, str(item)))
        return tuple(pairs)

    def require_variants(self, propose: Proposing, item: str, keys: Sequence[str], path: str) -> None:
        """Every region (or specialty) the engine may choose must have a variant."""
        template = next((t for t in propose.proposals if t.item == item), None)
        if template is None:
            self.r.report(join(path, "proposals"), f"needs an item {item!r}")
            return
        for key in keys:
            if template.variant(key) is None:
                self.r.report(join(path, "proposals"), f"item {item!r} needs a variant {key!r}")

    def require_items(self, propose: Proposing, items: Sequence[str], path: str) -> None:
        present = {t.item for t in propose.proposals}
        for item in items:
            if item not in present:
                self.r.report(join(path, "proposals"), f"needs an item {item!r}")

    # The steps, one reader each.

    def progress_check(self, value: Any, path: str) -> ProgressCheckStep:
        node = self.fields(value, path, self.previous("progress-check"))
        propose = self.proposing("progress-check", node, path)
        self.require_items(propose, ("task",), path)
        return ProgressCheckStep(**self.base("progress-check", node, path), propose=propose)

    def authored(self, step_id: str, value: Any, path: str) -> ProposingStep:
        """A step the definition adds: presentation, priority, proposals and explanation only."""
        node = self.fields(value, path, ())
        return ProposingStep(**self.base(step_id, node, path), propose=self.proposing(step_id, node, path))

    def adherence(self, value: Any, path: str) -> AdherenceStep:
        extra = (
            "min_adherence_pct",
            "adherence_window_days",
            "min_pt_visits",
            "barrier_window_days",
            "no_barrier_remedy",
        )
        node = self.fields(value, path, (*extra, *self.previous("adherence")))
        propose = self.proposing("adherence", node, path)
        self.require_items(propose, ("task",), path)
        return AdherenceStep(
            **self.base("adherence", node, path),
            propose=propose,
            min_adherence_pct=self.r.number(node, "min_adherence_pct", path, 0, 100),
            adherence_window_days=self.days(node, "adherence_window_days", path),
            min_pt_visits=self.r.integer(node, "min_pt_visits", path, 0, 100),
            barrier_window_days=self.days(node, "barrier_window_days", path),
            no_barrier_remedy=self.r.text(node, "no_barrier_remedy", path),
        )

    def reassessment(self, value: Any, path: str) -> ReassessmentStep:
        node = self.fields(value, path, ("second_opinion", *self.previous("reassessment")), optional=("adherent_only",))
        propose = self.proposing("reassessment", node, path)
        items = [t.item for t in propose.proposals]
        adherent_only = (
            self.r.names(node, "adherent_only", path, items, "proposal item") if "adherent_only" in node else ()
        )
        rules = tuple(self.specialty(item, p) for item, p in self.r.sequence(node, "second_opinion", path))
        if rules and (rules[-1].when_neurological or rules[-1].when_diagnosis or rules[-1].when_findings):
            self.r.report(join(path, "second_opinion"), "the last choice must have no condition")
        self.require_items(propose, ("notify-prescriber",), path)
        self.require_variants(propose, "second-opinion", [rule.variant for rule in rules], path)
        return ReassessmentStep(
            **self.base("reassessment", node, path),
            propose=propose,
            second_opinion=rules,
            adherent_only=adherent_only,
        )

    def specialty(self, value: Any, path: str) -> SpecialtyRule:
        conditions = ("when_neurological", "when_diagnosis", "when_findings", "findings_since_days_before_t0")
        node = self.r.fields(value, path, ("variant",), (*conditions, "when_structural"))
        diagnosis = None
        if "when_diagnosis" in node:
            diagnosis = self.r.text(node, "when_diagnosis", path)
            if diagnosis not in self.context.diagnosis_groups:
                self.r.report(join(path, "when_diagnosis"), f"unknown diagnosis group {diagnosis!r}")
        return SpecialtyRule(
            self.r.text(node, "variant", path),
            self.r.boolean(node, "when_neurological", path),
            diagnosis,
            when_findings=self.finding_ids(node, "when_findings", path),
            findings_since_days_before_t0=self.optional_days(node, "findings_since_days_before_t0", path),
            when_structural=self.r.boolean(node, "when_structural", path),
        )

    def optional_days(self, node: Node, key: str, path: str) -> int:
        return self.days(node, key, path) if key in node else 0

    def imaging(self, value: Any, path: str) -> ImagingStep:
        node = self.fields(value, path, self.previous("imaging"), optional=("ct_instead", "regional"))
        propose = self.proposing("imaging", node, path)
        regional = self.regional(node["regional"], join(path, "regional")) if "regional" in node else None
        radiographs_first = self.context.radiograph_lines if regional else ()
        for item in MRI_ITEMS:
            self.require_variants(propose, item, [r for r in self.context.regions if r not in radiographs_first], path)
        self.require_items(propose, ("ncs",), path)
        if radiographs_first:
            self.require_variants(propose, RADIOGRAPHS, radiographs_first, path)
        ct_instead = self.ct_instead(node["ct_instead"], join(path, "ct_instead")) if "ct_instead" in node else None
        base = self.base("imaging", node, path)
        return ImagingStep(**base, propose=propose, ct_instead=ct_instead, regional=regional)

    def regional(self, value: Any, path: str) -> RegionalImaging:
        """Spec 2.0 section 5: radiographs first, what *recent* means, and how a radiograph's conclusion reads."""
        keys = ("explanation", "recent_days", "report_days", "conclusions")
        node = self.r.fields(value, path, keys, ("eligible_on_record",))
        explanation = self.r.text(node, "explanation", path)
        self.placeholders(explanation, join(path, "explanation"), (*COMMON_WORDS, *REGIONAL_WORDS))
        eligible = []
        for region, _, region_path in self.r.entries(node, "eligible_on_record", path):
            if region not in (*self.context.regions, *self.context.lines):
                self.r.report(region_path, f"unknown region {shown(region)}")
            findings = node["eligible_on_record"]
            names = self.r.names(findings, region, join(path, "eligible_on_record"), self.context.findings, "finding")
            eligible.append((region, names))
        return RegionalImaging(
            explanation=explanation,
            recent_days=self.r.integer(node, "recent_days", path, 1, 3650),
            report_days=self.days(node, "report_days", path),
            conclusions=self.conclusions(node, path),
            eligible_on_record=tuple(eligible),
        )

    def conclusions(self, node: Node, path: str) -> tuple[ConclusionClass, ...]:
        """The classes of radiograph conclusion in precedence order; `unread` is the engine's own."""
        classes = []
        for class_id, value, class_path in self.r.entries(node, "conclusions", path):
            if class_id == UNREAD:
                self.r.report(class_path, "is reserved: a radiograph without a conclusion code is unread")
            entry = self.r.fields(value, class_path, ("label",), ("codes", "groups", "otherwise"))
            classes.append(
                ConclusionClass(
                    id=class_id,
                    label=self.r.text(entry, "label", class_path),
                    codes=CodeSet.of(self.matched_codes(entry, "codes", class_path)),
                    groups=self.groups(entry, "groups", class_path) if "groups" in entry else (),
                    otherwise=self.r.boolean(entry, "otherwise", class_path),
                )
            )
        if sum(c.otherwise for c in classes) > 1:
            self.r.report(join(path, "conclusions"), "at most one class reads every other code (otherwise: true)")
        return tuple(classes)

    def matched_codes(self, node: Node, key: str, path: str) -> tuple[Coding, ...]:
        """Codes matched against facts: ICD-10-CM families allowed."""
        found = (
            read_coding(self.r, self.context.systems, item, p, family_allowed=True)
            for item, p in self.r.sequence(node, key, path)
        )
        return tuple(c for c in found if c is not None)

    def advanced_imaging(self, value: Any, path: str) -> AdvancedImagingStep:
        """Spec 2.0 5.4: the MRI (CT when contraindicated, or its alternative) of a region after its radiograph."""
        node = self.fields(value, path, ("fires_on_report",), optional=("instead_of_mri", "ct_instead"))
        propose = self.proposing("advanced-imaging", node, path)
        for item in MRI_ITEMS:
            self.require_variants(propose, item, self.context.radiograph_lines, path)
        alternative = None
        if "instead_of_mri" in node:
            alternative = self.mri_alternative(node["instead_of_mri"], join(path, "instead_of_mri"), propose)
        ct_instead = self.ct_instead(node["ct_instead"], join(path, "ct_instead")) if "ct_instead" in node else None
        return AdvancedImagingStep(
            **self.base("advanced-imaging", node, path),
            propose=propose,
            # checked against `steps.imaging.regional.conclusions` once every step is read (build)
            fires_on_report=tuple(str(item) for item, _ in self.r.sequence(node, "fires_on_report", path)),
            instead_of_mri=alternative,
            ct_instead=ct_instead,
        )

    def mri_alternative(self, value: Any, path: str, propose: Proposing) -> MriAlternative:
        node = self.r.fields(value, path, ("item", "when_diagnosis"), ("unless_diagnosis",))
        item = self.r.text(node, "item", path)
        if item and item not in {t.item for t in propose.proposals}:
            self.r.report(join(path, "item"), f"unknown proposal item {shown(item)}")
        unless = self.groups(node, "unless_diagnosis", path) if "unless_diagnosis" in node else ()
        return MriAlternative(item, self.groups(node, "when_diagnosis", path), unless)

    def imaging_conclusion(self, value: Any, path: str) -> ProposingStep:
        """Spec 2.0 5.1: a Task for the coordinator to record an unread radiograph's conclusion."""
        node = self.fields(value, path, ())
        propose = self.proposing("imaging-conclusion", node, path)
        self.require_items(propose, ("task",), path)
        return ProposingStep(**self.base("imaging-conclusion", node, path), propose=propose)

    def ct_instead(self, value: Any, path: str) -> CtInstead:
        """The wording of the CT that replaces a proposed MRI (spec 1.1, `imaging` (CT instead))."""
        node = self.r.fields(value, path, ("explanation", "withdrawal_reason"))
        allowed = (*COMMON_WORDS, *CT_INSTEAD_WORDS)
        wording = {key: self.r.text(node, key, path) for key in ("explanation", "withdrawal_reason")}
        for key, text in wording.items():
            self.placeholders(text, join(path, key), allowed)
        return CtInstead(**wording)

    def injection(self, value: Any, path: str) -> InjectionStep:
        optional = ("needs_imaging", "items_by_group", "with_medication")
        node = self.fields(value, path, ("diagnosis_groups", *self.previous("injection")), optional=optional)
        propose = self.proposing("injection", node, path)
        by_group = self.items_by_group(node, path, propose)
        if not by_group:  # 2.0: one proposal per group instead of one per region
            self.require_variants(propose, "injection", self.context.regions, path)
        return InjectionStep(
            **self.base("injection", node, path),
            propose=propose,
            diagnosis_groups=self.groups(node, "diagnosis_groups", path),
            items_by_group=by_group,
            needs_imaging=self.r.boolean(node, "needs_imaging", path),
            with_medication=self.r.boolean(node, "with_medication", path),
        )

    def medication(self, value: Any, path: str) -> MedicationStep:
        optional = ("items_by_group", "first_group_only")
        node = self.fields(value, path, ("diagnosis_groups", *self.previous("medication")), optional=optional)
        propose = self.proposing("medication", node, path)
        return MedicationStep(
            **self.base("medication", node, path),
            propose=propose,
            diagnosis_groups=self.groups(node, "diagnosis_groups", path),
            items_by_group=self.items_by_group(node, path, propose),
            first_group_only=self.r.boolean(node, "first_group_only", path),
        )

    def surgical_consult(self, value: Any, path: str) -> SurgicalConsultStep:
        optional = ("qualifiers", "fact_since_days_before_t0", "young_traumatic")
        node = self.fields(value, path, ("fact_groups", "urgent_groups", "urgent_priority"), optional=optional)
        propose = self.proposing("surgical-consult", node, path)
        self.require_variants(propose, "referral", self.context.regions, path)
        since = node.get("fact_since_days_before_t0")
        return SurgicalConsultStep(
            **self.base("surgical-consult", node, path),
            propose=propose,
            fact_groups=self.groups(node, "fact_groups", path),
            urgent_groups=self.groups(node, "urgent_groups", path),
            urgent_priority=Priority(self.r.choice(node, "urgent_priority", path, _PRIORITIES)),
            qualifiers=tuple(self.qualifier(g, v, p) for g, v, p in self.r.entries(node, "qualifiers", path)),
            fact_since_days_before_t0=None if since is None else self.days(node, "fact_since_days_before_t0", path),
            young_traumatic=self.young_traumatic(node["young_traumatic"], join(path, "young_traumatic"))
            if "young_traumatic" in node
            else None,
        )

    def qualifier(self, group: str, value: Any, path: str) -> Qualifier:
        """2.0: the conditions under which a structural group counts (spec 5, "Structural for referral")."""
        keys = ("findings", "findings_since_days_before_t0", "degenerative_radiograph", "after_injection")
        node = self.r.fields(value, path, (), keys)
        if group not in self.context.diagnosis_groups:
            self.r.report(path, f"unknown diagnosis group {shown(group)}")
        return Qualifier(
            group,
            findings=self.finding_ids(node, "findings", path),
            findings_since_days_before_t0=self.optional_days(node, "findings_since_days_before_t0", path),
            degenerative_radiograph=self.r.boolean(node, "degenerative_radiograph", path),
            after_injection=self.r.boolean(node, "after_injection", path),
        )

    def young_traumatic(self, value: Any, path: str) -> YoungTraumatic:
        """2.0 (spec 5.7): the young traumatic cuff tear, an urgent immediate-consult diagnosis."""
        keys = ("groups", "traumatic_groups", "trauma_findings", "trauma_window_days", "younger_than_years")
        node = self.r.fields(value, path, keys)
        return YoungTraumatic(
            groups=self.groups(node, "groups", path),
            traumatic_groups=self.groups(node, "traumatic_groups", path),
            trauma_findings=self.finding_ids(node, "trauma_findings", path),
            trauma_window_days=self.days(node, "trauma_window_days", path),
            younger_than_years=self.r.integer(node, "younger_than_years", path, 1, 150),
        )

    def post_op_pt(self, value: Any, path: str) -> PostOpStep:
        """2.0 (spec 5.8): PT after surgery; `surgery` codes here for a definition without episode lines."""
        node = self.fields(value, path, ("surgery", "min_age_years"))
        propose = self.proposing("post-op-pt", node, path)
        self.require_items(propose, ("referral", "task"), path)
        codes = self.codes(node, "surgery", path)
        return PostOpStep(
            **self.base("post-op-pt", node, path),
            propose=propose,
            surgery=CodeSet.of(codes),
            min_age_years=self.r.integer(node, "min_age_years", path, 0, 150),
        )

    def red_flags(self, value: Any, path: str) -> RedFlagsStep:
        required = ("window_days_before_t0", "cluster_days", "major", "cluster", "minor")
        optional = ("context_clinical_statuses", "expected_signs", LOWER_WAITS)
        node = self.fields(value, path, required, False, optional)
        return RedFlagsStep(
            **self.base("red-flags", node, path),
            window_days_before_t0=self.days(node, "window_days_before_t0", path),
            cluster_days=self.days(node, "cluster_days", path),
            major=self.severity("major", node, path),
            cluster=self.severity("cluster", node, path),
            minor=self.severity("minor", node, path),
            context_clinical_statuses=self.context_clinical_statuses(node, path),
            expected_signs=self.expected_signs(node, path),
            lower_waits_for_higher=self.r.boolean(node, LOWER_WAITS, path),
        )

    def relapse(self, value: Any, path: str) -> RelapseStep:
        node = self.fields(value, path, ("watch_weeks", "next_checkpoint_weeks"))
        propose = self.proposing("relapse", node, path)
        self.require_items(propose, ("task",), path)
        return RelapseStep(
            **self.base("relapse", node, path),
            propose=propose,
            watch_weeks=self.watch_weeks(node, path),
            next_checkpoint_weeks=self.r.integer(node, "next_checkpoint_weeks", path, 1, 104),
        )

    def watch_weeks(self, node: Node, path: str) -> tuple[int, ...]:
        """Weeks after the response, each later than the one before (the last one closes the episode)."""
        weeks: list[int] = []
        for item, item_path in self.r.sequence(node, "watch_weeks", path):
            if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 104:
                self.r.report(item_path, "must be an integer between 1 and 104")
            elif weeks and item <= weeks[-1]:
                self.r.report(item_path, f"must be later than the week before it ({weeks[-1]})")
            else:
                weeks.append(item)
        return tuple(weeks)

    def context_clinical_statuses(self, node: Node, path: str) -> tuple[str, ...]:
        """Absent: a context finding counts as any Condition does (spec 1.0)."""
        key = "context_clinical_statuses"
        if key not in node:
            return COUNTING_CLINICAL_STATUSES
        statuses = self.r.names(node, key, path, CONDITION_CLINICAL_STATUSES, "clinical status")
        self.unique(statuses, join(path, key), "a status")
        missing = [s for s in COUNTING_CLINICAL_STATUSES if s not in statuses]
        if missing and isinstance(node[key], list) and node[key]:
            self.r.report(
                join(path, key),
                f"must include {', '.join(missing)}: a context finding counts at least wherever any Condition does",
            )
        return statuses

    def expected_signs(self, node: Node, path: str) -> tuple[ExpectedSigns, ...]:
        """Per diagnosis group, the minor findings that are its expected signs (spec 1.1; 2.0 section 6).

        A group's value is a list of signs (read for the patient, 1.1) or `{signs: [...], every_open_line: true}`
        (2.0). A sign is a minor finding's id, or `{finding: id, codes: [...]}` for some of its codes only.
        """
        found = []
        signs_path = join(path, "expected_signs")
        for group, value, group_path in self.r.entries(node, "expected_signs", path):
            if group not in self.context.diagnosis_groups:
                self.r.report(group_path, f"unknown diagnosis group {shown(group)}")
            items: Node = {group: value}
            key, items_path, every_open_line = group, signs_path, False
            if isinstance(value, Mapping):
                items = self.r.fields(value, group_path, ("signs",), (EVERY_OPEN_LINE,))
                key, items_path = "signs", group_path
                every_open_line = self.r.boolean(items, EVERY_OPEN_LINE, group_path)
                if (
                    every_open_line
                    and group in self.context.diagnosis_groups
                    and group not in self.context.lined_groups
                ):
                    self.r.report(join(group_path, EVERY_OPEN_LINE), "needs a diagnosis group with a line")
            signs = tuple(
                sign
                for item, item_path in self.r.sequence(items, key, items_path)
                if (sign := self.expected_sign(item, item_path)) is not None
            )
            self.unique([sign.finding for sign in signs], join(items_path, key), "a finding")
            found.append(ExpectedSigns(group, signs, every_open_line))
        return tuple(found)

    def expected_sign(self, value: Any, path: str) -> ExpectedSign | None:
        """A minor finding's id, or `{finding, codes}`: the finding when recorded with one of those codes only."""
        if not isinstance(value, Mapping):
            if value not in self.context.minor_findings:
                self.r.report(path, f"unknown minor finding {shown(value)}")
                return None
            return ExpectedSign(str(value))
        node = self.r.fields(value, path, ("finding", "codes"))
        finding = self.r.text(node, "finding", path)
        if finding not in self.context.minor_findings:
            self.r.report(join(path, "finding"), f"unknown minor finding {shown(finding)}")
            return None
        own = self.context.finding_codes.get(finding, CodeSet.of(()))
        codes = self.codes(node, "codes", path)
        for index, code in enumerate(codes):
            if not own.contains(code):
                self.r.report(join(join(path, "codes"), index), f"{code.code} is no code of the finding {finding!r}")
        return ExpectedSign(finding, CodeSet.of(codes))

    def unique(self, ids: Sequence[str], path: str, what: str) -> None:
        if len(set(ids)) != len(ids):
            self.r.report(path, f"lists {what} twice")

    def severity(self, key: str, node: Node, path: str) -> SeverityRule:
        sub_path = join(path, key)
        if key not in node:
            return SeverityRule(key, Proposing(Priority.ROUTINE, (), ""))  # reported as missing already
        alone = (ALONE_EXPLANATION,) if key == URGENT_SEVERITY else ()
        sub = self.r.fields(node[key], sub_path, _PROPOSING_KEYS, alone)
        propose = self.proposing("red-flags", sub, sub_path)
        self.require_items(propose, ("task",), sub_path)
        alone_explanation = self.r.optional_text(sub, ALONE_EXPLANATION, sub_path)
        if alone_explanation is not None:
            allowed = (*COMMON_WORDS, *STEP_WORDS["red-flags"])
            self.placeholders(alone_explanation, join(sub_path, ALONE_EXPLANATION), allowed)
        return SeverityRule(key, propose, alone_explanation)


_READERS = {
    "progress-check": "progress_check",
    "adherence": "adherence",
    "reassessment": "reassessment",
    "imaging": "imaging",
    "injection": "injection",
    "medication": "medication",
    "surgical-consult": "surgical_consult",
    "red-flags": "red_flags",
}
_OPTIONAL_READERS = {
    "relapse": "relapse",
    "post-op-pt": "post_op_pt",
    "advanced-imaging": "advanced_imaging",
    "imaging-conclusion": "imaging_conclusion",
}
"""Steps a definition may leave out: without `relapse`, a responder gets nothing more (1.0); the 2.0
imaging steps are needed only by a checkpoint row or `fact_steps` naming them, `post-op-pt` only by 2.0."""


def read_steps(reader: Reader, node: Node, path: str, context: Context) -> dict[str, Step]:
    """Every known step of the `steps` mapping; unknown and missing step ids are reported."""
    steps = StepReader(reader, context)
    found: dict[str, Step] = {}
    for step_id, value, step_path in reader.entries(node, "steps", path):
        if step_id in context.authored and step_id not in _READERS:
            found[step_id] = steps.authored(step_id, value, step_path)
            continue
        readers = _READERS | _OPTIONAL_READERS
        if step_id not in readers:
            reader.report(step_path, f"unknown step id {step_id!r}; known: {', '.join(readers)}")
            continue
        found[step_id] = getattr(steps, readers[step_id])(value, step_path)
    scratch = StepReader(Reader(), context)  # a placeholder for a missing step: one problem, not dozens
    for step_id, method in _READERS.items():
        if step_id not in found:
            reader.report(join(join(path, "steps"), step_id), "missing")
            found[step_id] = getattr(scratch, method)({}, step_id)
    for step_id in context.authored:
        if step_id not in found:
            reader.report(join(join(path, "steps"), step_id), "missing (a checkpoint row names it)")
    return found
