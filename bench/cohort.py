"""A seeded synthetic cohort of PT journeys, realistic enough that every pathway step fires somewhere.

Each patient follows one course (responder, unmeasured, non-adherent, adherent non-responder,
structural diagnosis) over weekly PT visits, with pain, ODI, PSFS and adherence measured as a
clinic would; some courses add barriers, imaging, injections, diagnoses and red flags. The same
seed always gives the same cohort, so runs are comparable.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import ehr_resources as fhir
from bench.ehr_resources import CPT, LOCAL, LOINC, SNOMED, Code, Resource

DEFAULT_PATIENTS = 2_000
DEFAULT_SEED = 20261127
ANCHOR = datetime(2025, 1, 6, 9, tzinfo=UTC)  # a Monday safely in the past: every checkpoint is due
ENROLMENT_SPREAD_DAYS = 180  # patients start PT over half a year, so journeys interleave in time
VISIT_ATTENDANCE = 0.75  # share of weekly PT visits attended
PATIENTS_IN_FLIGHT = 20  # patients whose events interleave in the live feed at any moment

PAIN: Code = (LOINC, "72514-3")
ODI: Code = (LOINC, "97909-6")
PSFS: Code = (LOCAL, "psfs-mean-score")
ADHERENCE: Code = (LOCAL, "hep-adherence-pct")
BARRIER: Code = (LOCAL, "hep-barrier")
BARRIERS = (
    "barrier-time",
    "barrier-boredom",
    "barrier-forgetting",
    "barrier-low-self-efficacy",
    "barrier-unrealistic-expectations",
    "barrier-pain-flare",
    "barrier-therapist-fit",
)
MRI_CONTRAINDICATED: Code = (LOCAL, "mri-contraindicated")
MRI_LUMBAR_REPORT: Code = (CPT, "72148")
INJECTION_DONE: Code = (CPT, "62323")
MAJOR_FLAGS: tuple[Code, ...] = ((SNOMED, "192970008"), (SNOMED, "267064002"), (LOCAL, "rf-saddle-anaesthesia"))
MINOR_FLAGS: tuple[Code, ...] = (
    (SNOMED, "386661006"),
    (SNOMED, "43724002"),
    (SNOMED, "422868009"),
    (LOCAL, "rf-night-pain"),
    (SNOMED, "26544005"),
)
MALIGNANCY: Code = (SNOMED, "363346000")
# Diagnoses that lead on to injection and/or medication after imaging; the cervical one moves the region.
TREATABLE: tuple[Code, ...] = (
    (SNOMED, "202708005"),
    (SNOMED, "76107001"),
    (SNOMED, "72274001"),
    (SNOMED, "373621006"),
    (SNOMED, "54404000"),
)
STRUCTURAL_NOW: tuple[Code, ...] = ((SNOMED, "274152003"), (SNOMED, "50448004"))  # instability, fracture

COURSES = (("responder", 30), ("unmeasured", 8), ("non-adherent", 17), ("non-responder", 38), ("structural", 7))
# Red flags on top of any course: (kind, share of patients)
FLAGS = (("major", 0.03), ("minor-cluster", 0.03), ("context-minor", 0.02), ("single-minor", 0.06))


@dataclass
class Journey:
    """One patient's resources in clinical-time order."""

    patient_id: str
    course: str
    flags: str | None
    resources: list[tuple[datetime, Resource]] = field(default_factory=list)

    def add(self, at: datetime, builder: Callable[..., Resource], *args: object) -> None:
        resource_id = f"{self.patient_id}-{len(self.resources):03d}"
        self.resources.append((at, builder(resource_id, self.patient_id, at, *args)))

    def ordered(self) -> list[Resource]:
        return [r for _, r in sorted(self.resources, key=lambda item: (item[0], item[1]["id"]))]


def cohort(patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED) -> list[Journey]:
    """`patients` journeys from `seed`: the same arguments give the same cohort."""
    rng = random.Random(seed)
    return [_journey(rng, f"c0-p{number:05d}") for number in range(patients)]


def event_stream(journeys: list[Journey], in_flight: int = PATIENTS_IN_FLIGHT) -> list[Resource]:
    """Every resource of the cohort, as a live feed: `in_flight` patients at a time, interleaved in clinical order.

    A feed of all patients in one clinical timeline would spend a short run on everybody's first
    weeks, where nothing is due; groups of patients reach their checkpoints and decisions within
    seconds, as a clinic's steady state does.
    """
    timed = [
        (number // in_flight, at, r["id"], r) for number, journey in enumerate(journeys) for at, r in journey.resources
    ]
    return [r for *_, r in sorted(timed, key=lambda item: item[:3])]


def mix(journeys: list[Journey]) -> dict[str, dict[str, int]]:
    """How many patients follow each course and carry each kind of red flag, and resources by type."""
    resources = Counter(r["resourceType"] for j in journeys for _, r in j.resources)
    return {
        "courses": dict(Counter(j.course for j in journeys)),
        "flags": dict(Counter(j.flags for j in journeys if j.flags)),
        "resources": dict(resources),
    }


def _journey(rng: random.Random, patient_id: str) -> Journey:
    course = rng.choices([c for c, _ in COURSES], weights=[w for _, w in COURSES])[0]
    flags = next((kind for kind, share in FLAGS if rng.random() < share), None)
    journey = Journey(patient_id, course, flags)
    t0 = ANCHOR + timedelta(days=rng.randrange(ENROLMENT_SPREAD_DAYS), minutes=15 * rng.randrange(32))
    weeks = {"responder": 10, "unmeasured": 11, "non-adherent": 16}.get(course, 22)
    _visits(journey, rng, t0, weeks)
    COURSE_BUILDERS[course](journey, rng, t0)
    if flags:
        _red_flags(journey, rng, t0, flags)
    return journey


def _week(t0: datetime, weeks: float, rng: random.Random) -> datetime:
    return t0 + timedelta(weeks=weeks, hours=rng.randrange(0, 8))


def _visits(journey: Journey, rng: random.Random, t0: datetime, weeks: int) -> None:
    journey.add(t0, fhir.visit)
    for week in range(1, weeks):
        if rng.random() < VISIT_ATTENDANCE:
            journey.add(_week(t0, week, rng), fhir.visit)


def _measures(journey: Journey, rng: random.Random, t0: datetime, weeks: tuple[int, ...], drop: float) -> None:
    """Pain, ODI and PSFS at the given weeks, improving by `drop` of the scale by the last one."""
    pain, odi, psfs = rng.uniform(6, 8), rng.uniform(35, 55), rng.uniform(2, 4)
    last = max(weeks) or 1
    for week in weeks:
        share = drop * week / last
        at = _week(t0, week, rng)
        journey.add(at, fhir.score, PAIN, round(pain * (1 - share) + rng.uniform(-0.4, 0.4), 1))
        if week % 3 == 0:
            journey.add(at, fhir.score, ODI, round(odi * (1 - share)), "%")
        if week in (0, 6, 12):
            journey.add(at, fhir.score, PSFS, round(psfs + 6 * share, 1))


def _adherence(journey: Journey, rng: random.Random, t0: datetime, weeks: tuple[int, ...], low: bool) -> None:
    for week in weeks:
        value = rng.randrange(40, 70) if low else rng.randrange(82, 100)
        journey.add(_week(t0, week, rng), fhir.score, ADHERENCE, value, "%")


def _responder(journey: Journey, rng: random.Random, t0: datetime) -> None:
    _measures(journey, rng, t0, (0, 3, 6, 9), drop=0.5)
    _adherence(journey, rng, t0, (2, 5, 8), low=False)


def _unmeasured(journey: Journey, rng: random.Random, t0: datetime) -> None:
    journey.add(t0, fhir.score, PAIN, round(rng.uniform(5, 8), 1))  # a baseline, never repeated
    _adherence(journey, rng, t0, (3, 7), low=False)


def _non_adherent(journey: Journey, rng: random.Random, t0: datetime) -> None:
    _measures(journey, rng, t0, (0, 3, 6, 9, 12, 15), drop=0.05)
    _adherence(journey, rng, t0, (2, 5, 9, 13), low=True)
    for week in rng.sample(range(2, 10), 2):
        journey.add(_week(t0, week, rng), fhir.coded, BARRIER, (LOCAL, rng.choice(BARRIERS)))


def _non_responder(journey: Journey, rng: random.Random, t0: datetime) -> None:
    """Adherent without improvement: reassessment, imaging, a diagnosis, injection, maybe surgery."""
    _measures(journey, rng, t0, (0, 3, 6, 9, 12, 15, 18, 21), drop=0.05)
    _adherence(journey, rng, t0, (2, 5, 9, 13, 17), low=False)
    if rng.random() < 0.1:
        journey.add(_week(t0, 1, rng), fhir.finding, MRI_CONTRAINDICATED)
    if rng.random() < 0.6:
        journey.add(_week(t0, 10.5, rng), fhir.report, MRI_LUMBAR_REPORT)
    if rng.random() < 0.75:
        journey.add(_week(t0, 11, rng), fhir.diagnosis, rng.choice(TREATABLE))
        if rng.random() < 0.6:
            journey.add(_week(t0, 13, rng), fhir.procedure, INJECTION_DONE)


def _structural(journey: Journey, rng: random.Random, t0: datetime) -> None:
    _measures(journey, rng, t0, (0, 3, 6, 9, 12), drop=0.1)
    _adherence(journey, rng, t0, (2, 5, 9), low=False)
    journey.add(_week(t0, rng.choice((2, 4, 8)), rng), fhir.diagnosis, rng.choice(STRUCTURAL_NOW))


def _red_flags(journey: Journey, rng: random.Random, t0: datetime, kind: str) -> None:
    week = rng.uniform(1, 8)
    if kind == "major":
        journey.add(_week(t0, week, rng), fhir.finding, rng.choice(MAJOR_FLAGS))
        return
    first, second = rng.sample(MINOR_FLAGS, 2)
    journey.add(_week(t0, week, rng), fhir.finding, first)
    if kind == "minor-cluster":
        journey.add(_week(t0, week + 1, rng), fhir.finding, second)
    elif kind == "context-minor":
        journey.add(_week(t0, week - 0.5, rng), fhir.diagnosis, MALIGNANCY)


COURSE_BUILDERS = {
    "responder": _responder,
    "unmeasured": _unmeasured,
    "non-adherent": _non_adherent,
    "non-responder": _non_responder,
    "structural": _structural,
}


def ndjson_lines(journeys: list[Journey]) -> Iterator[tuple[str, Resource]]:
    """(type, resource) for a Bulk Data export: Patients, then every fact."""
    for journey in journeys:
        yield "Patient", fhir.patient(journey.patient_id)
    for journey in journeys:
        for resource in journey.ordered():
            yield resource["resourceType"], resource
