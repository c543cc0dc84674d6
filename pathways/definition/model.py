"""The typed, frozen form of a pathway definition (see `docs/definition-format.md`).

The loader (`pathways.definition.build`) builds these from YAML; the classifier and the engine
read them. Every clinical number and code lives in the YAML, never here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pathways.model import Coding, Priority, ProposalKind

STEP_IDS = (
    "progress-check",
    "adherence",
    "reassessment",
    "imaging",
    "injection",
    "medication",
    "surgical-consult",
    "red-flags",
    "relapse",
    "advanced-imaging",
    "imaging-conclusion",
    "post-op-pt",
)
"""Steps the engine knows how to evaluate; a definition configures each of them (`relapse`, and the
2.0 imaging steps `advanced-imaging` and `imaging-conclusion`, only when it has them)."""

CHECKPOINT_STEPS = (*STEP_IDS[:7], "advanced-imaging", "imaging-conclusion")
"""Built-in steps a checkpoint row may name; a definition may author more (see `CheckpointRow`)."""
FACT_STEPS = ("injection", "medication", "surgical-consult", "post-op-pt", "advanced-imaging")


FAMILY_MARK = "*"
"""Ends an ICD-10-CM family token (`icd10cm|M17*`): every code that is or starts with the family."""


@dataclass(frozen=True, slots=True)
class CodeSet:
    """Codings that mean one thing; matching uses (system, code) only.

    `families` are ICD-10-CM families (spec 2.0, "Code matching"): (system, prefix) pairs that match
    every code equal to the prefix or starting with it as written, dot included (`M25.56` matches
    `M25.561`). Every other code matches exactly, with no subsumption.
    """

    codings: tuple[Coding, ...]
    keys: frozenset[tuple[str, str]]
    families: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, codings: Iterable[Coding]) -> CodeSet:
        items = tuple(codings)
        exact = tuple(c for c in items if not c.code.endswith(FAMILY_MARK))
        families = tuple((c.system, c.code.removesuffix(FAMILY_MARK)) for c in items if c.code.endswith(FAMILY_MARK))
        return cls(items, frozenset(c.key for c in exact), families)

    def contains(self, coding: Coding) -> bool:
        """True when one coding is in the set, exactly or by its family."""
        if coding.key in self.keys:
            return True
        return any(coding.system == system and coding.code.startswith(prefix) for system, prefix in self.families)

    def matches(self, codes: Iterable[Coding]) -> bool:
        """True when any of `codes` is in the set."""
        if not self.families:
            return not self.keys.isdisjoint(c.key for c in codes)
        return any(self.contains(c) for c in codes)

    def union(self, *others: CodeSet) -> CodeSet:
        """One set holding this set's codings and the others'."""
        return CodeSet.of((*self.codings, *(c for other in others for c in other.codings)))

    def first(self, codes: Iterable[Coding]) -> Coding | None:
        """The first of `codes` in the set, if any."""
        return next((c for c in codes if self.contains(c)), None)


class Better(StrEnum):
    """Which direction of a measure is improvement."""

    LOWER = "lower"
    HIGHER = "higher"


class Severity(StrEnum):
    """Red-flag finding classes (spec, "Red flags"; 2.0 section 6 adds urgent-alone)."""

    MAJOR = "major"
    MINOR = "minor"
    CONTEXT = "context"
    URGENT_ALONE = "urgent-alone"
    """One such finding alone makes the urgent severity (the cluster's Task and ServiceRequest)."""
    CLINICAL = "clinical"
    """2.0: a clinical finding some steps read (`inflammatory-features`); never a red flag."""


@dataclass(frozen=True, slots=True)
class Measure:
    """An outcome measure and its minimal clinically important difference."""

    id: str
    label: str
    codes: CodeSet
    better: Better
    mcid_points: float
    mcid_percent: float | None
    names_line: str | None = None
    """2.0: the episode line whose instrument this is (KOOS JR: knee). Its values name the line and go to
    that line's open episode; None for a measure of any line (pain, PSFS) or of `lines`."""
    lines: tuple[str, ...] = ()
    """2.0: the episode lines a value without an instrument's line may go to (LEFS: knee, hip); empty: any."""
    value_range: tuple[float, float] | None = None
    """The instrument's scale (YAML `range: [min, max]`, bounds included): a value outside it refuses the
    whole Observation at intake. None: any number is read."""


@dataclass(frozen=True, slots=True)
class Barrier:
    """A home-exercise barrier value and the remedy the adherence Task names."""

    id: str
    label: str
    code: Coding
    remedy: str


@dataclass(frozen=True, slots=True)
class BelowAge:
    """A finding's class for a patient younger than `years` at the finding (spec 2.0 section 6, acute cuff tear)."""

    years: int
    severity: Severity
    unknown_counts: bool
    """Whether a patient without a birthDate counts as younger."""
    route: str | None = None
    """The route text of this younger form, in place of the finding's own."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A red-flag finding; its codes are synonyms of one finding."""

    id: str
    label: str
    severity: Severity
    codes: CodeSet
    route: str | None = None
    """2.0: where the finding sends the patient ("same-day imaging: suspected fracture"), named beside it."""
    below_age: BelowAge | None = None
    """2.0: another class (and route) while the patient is younger than an age; None: one class at every age."""


@dataclass(frozen=True, slots=True)
class DiagnosisGroup:
    """A group of diagnosis codes, e.g. radicular; a code may sit in several groups."""

    id: str
    label: str
    codes: CodeSet
    structural: bool
    line: str | None = None
    """2.0: the episode line whose diagnoses these are (its codes name the line); None: the patient's."""


@dataclass(frozen=True, slots=True)
class EpisodeLine:
    """A body region with episodes of its own (spec 2.0, "Regions and episodes"): what names it, how it starts.

    `codes` is the line's region code set: its own region codes and every code of its diagnosis
    groups. The spine line covers the regions of `Regions.default` and `Regions.by_code` (one
    spine episode at a time, lumbar or cervical by the 1.x rule); every other line is one region.
    """

    id: str
    label: str
    codes: CodeSet
    body_sites: CodeSet
    first_checkpoint_weeks: int
    covers: tuple[str, ...] = ()
    """The 1.x regions this line holds (the spine: lumbar and cervical); empty: the line is its own region."""
    min_age_years: int | None = None
    radiographs: CodeSet = CodeSet.of(())
    advanced_imaging: CodeSet = CodeSet.of(())
    surgery: CodeSet = CodeSet.of(())

    def names(self, codes: Iterable[Coding]) -> bool:
        return self.codes.matches(codes)

    @property
    def imaging(self) -> CodeSet:
        return self.radiographs.union(self.advanced_imaging)


@dataclass(frozen=True, slots=True)
class GenericProcedure:
    """Procedure codes that name no line (CPT 20610): attributed by body site, reason, or the one candidate open."""

    codes: CodeSet
    candidates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EpisodeLines:
    """2.0: the lines with episodes of their own, in the order that breaks every tie, and what is out of scope."""

    lines: tuple[EpisodeLine, ...]
    out_of_scope: CodeSet
    generic_procedures: tuple[GenericProcedure, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(line.id for line in self.lines)

    def line(self, line_id: str) -> EpisodeLine:
        return next(line for line in self.lines if line.id == line_id)

    @property
    def unregioned(self) -> EpisodeLine:
        """The line an episode with no region evidence behaves as (spec 2.0 1.4: the 1.x "else lumbar")."""
        return next((line for line in self.lines if line.covers), self.lines[0])


@dataclass(frozen=True, slots=True)
class Regions:
    """Body region of the episode: the first region whose code is on record, else the default."""

    default: str
    by_code: tuple[tuple[str, CodeSet], ...]
    episode_lines: EpisodeLines | None = None
    """2.0: episodes per region; None (1.x): one episode per patient, its region by the codes on record."""

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.default, *(region for region, _ in self.by_code))

    def region_of(self, codes: Iterable[Coding]) -> str | None:
        """The region a set of codes names, or None when they name none."""
        found = tuple(codes)
        return next((region for region, code_set in self.by_code if code_set.matches(found)), None)


@dataclass(frozen=True, slots=True)
class Neurological:
    """What counts as neurological findings (specialty and nerve-study choice)."""

    diagnosis_groups: tuple[str, ...]
    findings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EpisodeRules:
    """Episode timing: baseline window, evaluability, the first checkpoint, and when a new episode starts.

    `new_episode_after_days`: a finished PT visit this long or longer after the episode's last one
    starts a new episode; None (1.0) keeps one episode per patient.
    """

    baseline_window_days: int
    evaluable_after_days: int
    first_checkpoint_weeks: int
    new_episode_after_days: int | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    """One alternative of a proposal, e.g. the cervical MRI or the neurologist referral."""

    key: str
    label: str
    codes: tuple[Coding, ...]
    performer: Coding | None


@dataclass(frozen=True, slots=True)
class ProposalTemplate:
    """A Task or ServiceRequest a step proposes; `text` may hold placeholders."""

    item: str
    kind: ProposalKind
    text: str
    codes: tuple[Coding, ...]
    performer: Coding | None
    note: str | None
    variants: tuple[Variant, ...]
    reason_codes: tuple[Coding, ...] = ()
    """2.0: the ServiceRequest's `reasonCode` (LOCAL `pt-approach-change`)."""

    def variant(self, key: str) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)


@dataclass(frozen=True, slots=True)
class Proposing:
    """What firing proposes: priority, templates and the explanation wording."""

    priority: Priority
    proposals: tuple[ProposalTemplate, ...]
    explanation: str

    def template(self, item: str) -> ProposalTemplate:
        return next(p for p in self.proposals if p.item == item)


@dataclass(frozen=True, slots=True)
class Step:
    """Presentation shared by every step."""

    id: str
    title: str
    description: str
    applies_when: str


@dataclass(frozen=True, slots=True)
class ProposingStep(Step):
    """A step with one set of proposals (every step but red flags, which has one per severity)."""

    propose: Proposing


@dataclass(frozen=True, slots=True)
class ProgressCheckStep(ProposingStep):
    pass


@dataclass(frozen=True, slots=True)
class AdherenceStep(ProposingStep):
    min_adherence_pct: float
    adherence_window_days: int
    min_pt_visits: int
    barrier_window_days: int
    no_barrier_remedy: str


@dataclass(frozen=True, slots=True)
class SpecialtyRule:
    """Second-opinion choice: the first rule whose condition holds gives the variant."""

    variant: str
    when_neurological: bool
    when_diagnosis: str | None
    when_findings: tuple[str, ...] = ()
    """2.0: or one of these findings dated on or after t0 − `findings_since_days_before_t0` (either suffices)."""
    findings_since_days_before_t0: int = 0
    when_structural: bool = False
    """2.0: a structural-for-referral diagnosis on record (`SurgicalConsultStep.structural_for_referral`)."""


@dataclass(frozen=True, slots=True)
class ReassessmentStep(ProposingStep):
    second_opinion: tuple[SpecialtyRule, ...]
    adherent_only: tuple[str, ...] = ()
    """2.0: proposal items made only when the patient is adherent at this checkpoint (the PT referral)."""


@dataclass(frozen=True, slots=True)
class CtInstead:
    """Spec 1.1, `imaging` (CT instead): wording of the CT that replaces a proposed MRI, and of the MRI's withdrawal."""

    explanation: str
    withdrawal_reason: str


UNREAD = "unread"
"""The conclusion of a radiograph that no report with a conclusion code reads (spec 2.0 5.4); no definition lists it."""


@dataclass(frozen=True, slots=True)
class ConclusionClass:
    """One class of radiograph conclusion (spec 2.0 5.4): the conclusion codes that read as it.

    `groups`: diagnosis groups whose codes read as it too, each only for a radiograph of its own
    line (a knee radiograph concluded with a knee OA code is degenerative). `otherwise`: every
    code no class lists reads as this one.
    """

    id: str
    label: str
    codes: CodeSet
    groups: tuple[str, ...] = ()
    otherwise: bool = False


@dataclass(frozen=True, slots=True)
class RegionalImaging:
    """Spec 2.0 section 5: imaging of a region with radiograph codes of its own (`regions.lines.<id>.radiographs`).

    Such a region is imaged with radiographs first; advanced imaging and the radiograph's conclusion
    are the steps `advanced-imaging` and `imaging-conclusion`. `conclusions` are in precedence order:
    of several codes on one report, the class listed first wins.
    """

    explanation: str
    recent_days: int
    report_days: int
    conclusions: tuple[ConclusionClass, ...]
    eligible_on_record: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Per region, findings whose record makes the region imaging-eligible before reassessment fired."""

    def eligible_findings(self, region: str) -> tuple[str, ...]:
        return dict(self.eligible_on_record).get(region, ())

    @property
    def conclusion_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.conclusions)

    def label(self, conclusion: str) -> str:
        return next((c.label for c in self.conclusions if c.id == conclusion), conclusion)


@dataclass(frozen=True, slots=True)
class ImagingStep(ProposingStep):
    ct_instead: CtInstead | None = None
    """When set, an MRI contraindication recorded after the MRI proposal turns it into a CT (absent in 1.0)."""
    regional: RegionalImaging | None = None
    """When set, a region whose episode line has radiograph codes is imaged radiographs first (2.0)."""


@dataclass(frozen=True, slots=True)
class MriAlternative:
    """A study proposed instead of the MRI when a diagnosis of `when_diagnosis` is on record and none of
    `unless_diagnosis` (any verification status but refuted or entered-in-error), for regions with a variant."""

    item: str
    when_diagnosis: tuple[str, ...]
    unless_diagnosis: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AdvancedImagingStep(ProposingStep):
    """Spec 2.0 5.4: MRI of the region (CT when contraindicated, or an alternative) after a radiograph.

    `fires_on_report`: the conclusion classes of a radiograph report, recorded after `imaging`
    fired, on which it fires when the report arrives (with `advanced-imaging` in `fact_steps`).
    """

    fires_on_report: tuple[str, ...]
    instead_of_mri: MriAlternative | None = None
    ct_instead: CtInstead | None = None


@dataclass(frozen=True, slots=True)
class DiagnosisStep(ProposingStep):
    """A step that a confirmed diagnosis in one of `diagnosis_groups` fires; the next checkpoint follows it."""

    diagnosis_groups: tuple[str, ...]
    items_by_group: tuple[tuple[str, str], ...] = ()
    """2.0: (group, proposal item) in order: the item of each confirmed group is proposed (or the first only,
    `first_group_only`), with the items no group names. Empty (1.x): every item is proposed."""
    first_group_only: bool = False

    def items_for(self, groups: Sequence[str]) -> tuple[str, ...] | None:
        """The proposal items for diagnoses of `groups`; None: every item (no `items_by_group`)."""
        if not self.items_by_group:
            return None
        chosen = [item for group, item in self.items_by_group if group in groups]
        if self.first_group_only:
            chosen = chosen[:1]
        named = {item for _, item in self.items_by_group}
        others = [t.item for t in self.propose.proposals if t.item not in named]
        return tuple(dict.fromkeys((*chosen, *others)))


@dataclass(frozen=True, slots=True)
class InjectionStep(DiagnosisStep):
    """The epidural injection and modified PT."""

    needs_imaging: bool = False
    """Spec 1.1, image before an injection: on a fact it needs imaging since t0, else imaging fires first."""
    with_medication: bool = False
    """2.0: at a checkpoint, `medication` fires with the injection when it applies (two decisions, one moment)."""


MedicationStep = DiagnosisStep  # the medication review for neuropathic pain


@dataclass(frozen=True, slots=True)
class Qualifier:
    """2.0: when a diagnosis of `group` counts as structural (spec 5, "Structural for referral"; ruling 6).

    Every condition set must hold: a finding of `findings` dated on or after t0 − `findings_since_days_before_t0`;
    a degenerative region radiograph on record; an injection fired or done in the episode.
    """

    group: str
    findings: tuple[str, ...] = ()
    findings_since_days_before_t0: int = 0
    degenerative_radiograph: bool = False
    after_injection: bool = False


@dataclass(frozen=True, slots=True)
class YoungTraumatic:
    """2.0 (spec 5.7): a diagnosis of `groups` is an urgent immediate-consult one when traumatic and young.

    Traumatic: it is also in `traumatic_groups` (ICD S46.01/S46.02 with 7th character A), or a finding
    of `trauma_findings` is dated within `trauma_window_days` before it. Young: younger than
    `younger_than_years` at the diagnosis, an unknown birthDate counting as younger.
    """

    groups: tuple[str, ...]
    traumatic_groups: tuple[str, ...]
    trauma_findings: tuple[str, ...]
    trauma_window_days: int
    younger_than_years: int


@dataclass(frozen=True, slots=True)
class SurgicalConsultStep(ProposingStep):
    fact_groups: tuple[str, ...]
    urgent_groups: tuple[str, ...]
    urgent_priority: Priority
    qualifiers: tuple[Qualifier, ...] = ()
    """2.0: structural groups that count only under conditions (OA, meniscal tear, adhesive capsulitis)."""
    fact_since_days_before_t0: int | None = None
    """2.0 (b): an immediate-consult diagnosis counts from t0 − these days, also recorded before the
    episode opened (then evaluated at its first PT visit); None (1.x): only one recorded after t0."""
    young_traumatic: YoungTraumatic | None = None

    def qualifier(self, group: str) -> Qualifier | None:
        return next((q for q in self.qualifiers if q.group == group), None)


@dataclass(frozen=True, slots=True)
class PostOpStep(ProposingStep):
    """2.0 (spec 5.8): PT after a completed surgery Procedure; the episode then goes to `surgical`."""

    surgery: CodeSet
    min_age_years: int


@dataclass(frozen=True, slots=True)
class RelapseStep(ProposingStep):
    """The relapse watch: checkpoints `watch_weeks` after the first response; a relapse sets the next one."""

    watch_weeks: tuple[int, ...]
    next_checkpoint_weeks: int


@dataclass(frozen=True, slots=True)
class SeverityRule:
    """What one red-flag severity proposes."""

    id: str
    propose: Proposing
    alone_explanation: str | None = None
    """2.0, the urgent severity: the explanation when one urgent-alone finding made it (no cluster to name)."""


CONDITION_CLINICAL_STATUSES = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")
"""FHIR R4 `condition-clinical` codes, the values `Condition.clinicalStatus` may take."""

COUNTING_CLINICAL_STATUSES = CONDITION_CLINICAL_STATUSES[:3]
"""With these (or none) a Condition counts (spec, "Rules for all facts"): active, recurrence, relapse."""


@dataclass(frozen=True, slots=True)
class ExpectedSign:
    """A minor finding, or only some of its codes (2.0: muscle weakness 26544005, not 102568007)."""

    finding: str
    codes: CodeSet | None = None
    """None: the finding whatever its code; else only a record of it coded with one of these."""

    def matches(self, finding: str, code: tuple[str, str] | None) -> bool:
        """Whether a record of `finding` matched by `code` is this sign (with `codes`, no code kept is no match)."""
        if finding != self.finding:
            return False
        return self.codes is None or (code is not None and self.codes.contains(Coding(*code)))


@dataclass(frozen=True, slots=True)
class ExpectedSigns:
    """Minor findings that are expected signs of a confirmed diagnosis of `group`, not red flags on their own.

    `every_open_line` (2.0 section 6): while two or more episodes are open, the sign is expected only
    when every open episode's line has a confirmed diagnosis of a group that expects it. Without it
    (1.1's radicular signs, ruling 3) the sign is read for the patient, whatever episodes are open.
    """

    group: str
    signs: tuple[ExpectedSign, ...]
    every_open_line: bool = False

    @property
    def findings(self) -> tuple[str, ...]:
        return tuple(sign.finding for sign in self.signs)

    def expects(self, finding: str, code: tuple[str, str] | None) -> bool:
        return any(sign.matches(finding, code) for sign in self.signs)


@dataclass(frozen=True, slots=True)
class RedFlagsStep(Step):
    window_days_before_t0: int
    cluster_days: int
    major: SeverityRule
    cluster: SeverityRule
    minor: SeverityRule
    context_clinical_statuses: tuple[str, ...] = COUNTING_CLINICAL_STATUSES
    """With these clinical statuses (or none) a Condition's context finding counts (spec 1.1: any)."""
    expected_signs: tuple[ExpectedSigns, ...] = ()
    """Spec 1.1 "expected radicular signs"; none (spec 1.0): every minor finding is a red flag."""
    lower_waits_for_higher: bool = False
    """Spec 2.0 ruling 11: a lower severity does not fire while a Task of a higher one is open (1.x: it does)."""

    def groups_expecting(self, finding_id: str) -> tuple[str, ...]:
        """Diagnosis groups of which the finding, by some or all of its codes, is an expected sign."""
        return tuple(e.group for e in self.expected_signs if finding_id in e.findings)

    def expecting(self, finding_id: str, code: tuple[str, str] | None) -> tuple[ExpectedSigns, ...]:
        """The expected-sign lists that name the finding, as recorded with `code`."""
        return tuple(e for e in self.expected_signs if e.expects(finding_id, code))

    @property
    def severities(self) -> tuple[SeverityRule, ...]:
        """Highest first."""
        return (self.major, self.cluster, self.minor)


PREDICATES: dict[str, str] = {
    "evaluable": "none",
    "adherent": "none",
    "responded": "none",
    "neurological": "none",
    "imaging_since_t0": "none",
    "mri_contraindicated": "none",
    "fired": "step",
    "fired_at_this_checkpoint": "step",
    "checkpoint_set_by": "setter",
    "diagnosis": "groups",
    "finding": "findings",
    "region": "region",
    "surgical_candidate": "none",
    "imaging_eligible": "none",
    "recent_radiograph": "none",
    "recent_advanced_imaging": "none",
    "latest_radiograph": "conclusions",
    "radiograph_conclusion": "conclusions",
}
"""Every predicate a condition may use, with the kind of argument it takes (`none`: written bare)."""

COMBINATORS = ("not", "all", "any")


@dataclass(frozen=True, slots=True)
class Predicate:
    """One documented question about the patient at the moment, e.g. `{fired: imaging}`.

    `argument` is empty for bare predicates, a step id (or `episode-start`), a region, or ids of diagnosis groups or
    findings (`diagnosis: structural` is read as every group marked structural).
    """

    name: str
    argument: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


@dataclass(frozen=True, slots=True)
class All:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    conditions: tuple[Condition, ...]


Condition = Predicate | Not | All | AnyOf


@dataclass(frozen=True, slots=True)
class NextCheckpoint:
    """When a row sets the next checkpoint: `weeks` after the decision, with at most one special rule.

    `None` weeks clears the checkpoint (the pathway waits for a fact). `sooner_on_diagnosis`: the
    checkpoint comes forward to the moment a confirmed diagnosis of these groups arrives after the
    decision. `from_injection_done`: counted from the first completed injection after the
    decision, moved when one arrives later.
    """

    weeks: int | None
    sooner_on_diagnosis: tuple[str, ...] = ()
    from_injection_done: bool = False


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One row of the checkpoint table: the step it fires, when, and the checkpoint it sets."""

    step: str
    when: Condition
    next: NextCheckpoint
    repeatable: bool = False


@dataclass(frozen=True, slots=True)
class Definition:
    """A pathway definition: identity, bindings, thresholds and steps."""

    url: str
    version: str
    name: str
    title: str
    status: str
    description: str
    episode: EpisodeRules
    measures: tuple[Measure, ...]
    pt_visit: CodeSet
    adherence_codes: CodeSet
    barrier_codes: CodeSet
    barriers: tuple[Barrier, ...]
    mri_contraindicated: CodeSet
    injection_codes: CodeSet
    imaging_codes: CodeSet
    findings: tuple[Finding, ...]
    neurological: Neurological
    diagnoses: tuple[DiagnosisGroup, ...]
    regions: Regions
    checkpoint_table: tuple[CheckpointRow, ...]
    fact_steps: tuple[str, ...]
    progress_check: ProgressCheckStep
    adherence: AdherenceStep
    reassessment: ReassessmentStep
    imaging: ImagingStep
    injection: InjectionStep
    medication: MedicationStep
    surgical_consult: SurgicalConsultStep
    red_flags: RedFlagsStep
    authored: tuple[ProposingStep, ...] = ()
    relapse: RelapseStep | None = None
    """The relapse watch and closed episodes (1.1); None: a responder gets nothing more (1.0)."""
    post_op_pt: PostOpStep | None = None
    """2.0: PT after surgery (spec 5.8); None (1.x): surgery is not read."""
    unlisted_rows: tuple[CheckpointRow, ...] = ()
    """Rows never tried at a checkpoint, read only for the checkpoint their step sets when it fires on a fact.

    Only the previous format has them: it could leave injection out of the table yet fire it on a fact.
    """
    task_due: tuple[tuple[Priority, timedelta], ...] = ()
    """How long after it is authored a Task of each priority is due; a priority not listed has no due time."""
    advanced_imaging: AdvancedImagingStep | None = None
    """Spec 2.0: advanced imaging of a region after its radiograph; None before 2.0."""
    imaging_conclusion: ProposingStep | None = None
    """Spec 2.0: a Task to record an unread radiograph's conclusion; None before 2.0."""
    line_definitions: tuple[tuple[str, Definition], ...] = ()
    """2.0: (line id, the definition that line's lanes run) for each line with rules of its own."""
    lane_of: str | None = None
    """Set on the definition as one episode line's lanes read it (`pathways.lines.views`): a view, not a pathway."""

    @property
    def runs_lines(self) -> bool:
        """Whether a patient's pathway runs episode lines (2.0); a lane's view runs as one 1.x pathway."""
        return self.regions.episode_lines is not None and self.lane_of is None

    def line_definition(self, line_id: str) -> Definition | None:
        """The definition a line with rules of its own runs (its table and steps); None: it reads this one."""
        return next((d for line, d in self.line_definitions if line == line_id), None)

    def due_within(self, priority: Priority) -> timedelta | None:
        """The due time of a Task of `priority`, counted from its authoredOn; None when the definition sets none."""
        return next((due for p, due in self.task_due if p is priority), None)

    @property
    def checkpoint_rows(self) -> tuple[str, ...]:
        """The steps of the checkpoint table, in the order its rows are tried."""
        return tuple(row.step for row in self.checkpoint_table)

    def row_of(self, step_id: str) -> CheckpointRow | None:
        """The row of a step (a step has at most one), tried or unlisted."""
        return next((row for row in (*self.checkpoint_table, *self.unlisted_rows) if row.step == step_id), None)

    @property
    def reference(self) -> str:
        """Canonical `url|version`, recorded on every decision."""
        return f"{self.url}|{self.version}"

    @property
    def id(self) -> str:
        """The PlanDefinition's logical id: the last segment of its canonical url."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every step, in the order of the spec's tables."""
        return (
            self.progress_check,
            self.adherence,
            self.reassessment,
            self.imaging,
            self.injection,
            self.medication,
            self.surgical_consult,
            *((self.advanced_imaging,) if self.advanced_imaging else ()),
            *((self.imaging_conclusion,) if self.imaging_conclusion else ()),
            *self.authored,
            *((self.relapse,) if self.relapse else ()),
            *((self.post_op_pt,) if self.post_op_pt else ()),
            self.red_flags,
        )

    def finding(self, finding_id: str) -> Finding:
        return next(f for f in self.findings if f.id == finding_id)

    def barrier(self, barrier_id: str) -> Barrier:
        return next(b for b in self.barriers if b.id == barrier_id)

    def diagnosis_group(self, group_id: str) -> DiagnosisGroup:
        return next(g for g in self.diagnoses if g.id == group_id)

    @property
    def structural_groups(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.diagnoses if g.structural)
