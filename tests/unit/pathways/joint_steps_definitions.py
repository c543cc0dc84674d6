"""Single-line test definitions for the joint treatment and referral steps (spec 2.0, sections 2 and 5).

Each is the shipped 1.1.0 data with the episode's region set to one joint, that joint's diagnosis
groups, its measures, the joint step configuration and the joint checkpoint table. The data below
is YAML-shaped, with its source on each value, so that it can be lifted into pt-nonresponse-2.0.0.
The imaging rows of 5.1 (`imaging` radiographs, `advanced-imaging`, `imaging-conclusion`) are the
imaging rules' and are left out, except 1.1's `imaging` row as a stand-in for the radiographs.

spec = pathway-spec-joints.md, by section; codes: reference/joints/codes-joints.csv.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pathways.definition import SHIPPED_VERSIONS, Definition, build_definition
from pathways.definition.safe_yaml import parse_located

# spec 2.2 — knee groups (roles: E injection, M medication, S structural, I immediate consult)
KNEE_GROUPS: dict[str, Any] = {
    "knee-oa": {  # E, M, S (S only with a degenerative radiograph: spec 5 "Structural for referral")
        "label": "knee osteoarthritis",
        "structural": True,
        "codes": ["icd10cm|M17*", "snomed|239873007"],
    },
    "patellofemoral-pain": {  # no role
        "label": "patellofemoral pain",
        "structural": False,
        "codes": [
            "icd10cm|M22.2*",
            "icd10cm|M22.4*",
            "icd10cm|M76.5*",
            "snomed|430725003",
            "snomed|36071006",
            "snomed|37785001",
        ],
    },
    "meniscal-tear": {  # S only with knee-mechanical-symptoms
        "label": "meniscal tear",
        "structural": True,
        "codes": [
            "icd10cm|S83.2*",
            "icd10cm|M23.2*",
            "icd10cm|M23.3*",
            "snomed|239720000",
            "snomed|302932006",
            "snomed|302933001",
            "snomed|269113006",
            "snomed|208921000",
            "snomed|111224002",
            "snomed|111222003",
            "snomed|21333004",
            "snomed|5313005",
            "snomed|77860008",
        ],
    },
    "bucket-handle-meniscal-tear": {  # I (urgent)
        "label": "bucket-handle meniscal tear",
        "structural": False,
        "codes": [
            "icd10cm|S83.200*",
            "icd10cm|S83.201*",
            "icd10cm|S83.202*",
            "icd10cm|S83.21*",
            "icd10cm|S83.25*",
            "snomed|86378006",
        ],
    },
    "knee-instability": {  # I (routine)
        "label": "knee instability",
        "structural": False,
        "codes": [
            "icd10cm|S83.5*",
            "icd10cm|M23.5*",
            "icd10cm|M24.46*",
            "icd10cm|M22.0*",
            "icd10cm|M22.1*",
            "icd10cm|M25.36*",
            "snomed|239725005",
            "snomed|209629006",
            "snomed|438582003",
            "snomed|239724009",
            "snomed|202110002",
            "snomed|250102002",
            "snomed|429696002",
            "snomed|202248001",
        ],
    },
    "knee-fracture": {  # I (urgent)
        "label": "knee fracture",
        "structural": False,
        "codes": [
            "icd10cm|S82.0*",
            "icd10cm|S82.1*",
            "icd10cm|S72.4*",
            "snomed|51037009",
            "snomed|80756009",
            "snomed|428257007",
            "snomed|428798001",
            "snomed|263233008",
        ],
    },
}

# spec 2.3 — shoulder groups
SHOULDER_GROUPS: dict[str, Any] = {
    "subacromial-pain": {  # E, M
        "label": "subacromial / rotator-cuff-related pain",
        "structural": False,
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
    "full-thickness-cuff-tear": {  # S; I (urgent) when traumatic and young (5.7)
        "label": "full-thickness rotator cuff tear",
        "structural": True,
        "codes": ["icd10cm|M75.12*", "icd10cm|S46.01*", "icd10cm|S46.02*", "snomed|202843000"],
    },
    "traumatic-cuff-tear": {  # spec 5.7: S46.01 or S46.02 with 7th character A (initial encounter); no role of its own
        "label": "traumatic rotator cuff tear, initial encounter",
        "structural": False,
        "codes": [
            "icd10cm|S46.011A",
            "icd10cm|S46.012A",
            "icd10cm|S46.019A",
            "icd10cm|S46.021A",
            "icd10cm|S46.022A",
            "icd10cm|S46.029A",
        ],  # icd10cm-joints-expansion.csv, 7th character A
    },
    "adhesive-capsulitis": {  # E, S (after an injection: ruling 6)
        "label": "adhesive capsulitis",
        "structural": True,
        "codes": ["icd10cm|M75.0*", "snomed|399114005", "snomed|430474001"],
    },
    "glenohumeral-oa": {  # E, M, S (with a degenerative radiograph)
        "label": "glenohumeral osteoarthritis",
        "structural": True,
        "codes": [
            "icd10cm|M19.01*",
            "icd10cm|M19.11*",
            "icd10cm|M19.21*",
            "snomed|373623009",
            "snomed|67315001",
            "snomed|201831003",
            "snomed|201849003",
            "snomed|415352004",
        ],
    },
    "glenoid-labral-lesion": {
        "label": "glenoid labral lesion",
        "structural": True,  # S
        "codes": ["icd10cm|S43.43*", "snomed|202332000"],
    },
    "shoulder-instability": {
        "label": "shoulder instability",
        "structural": False,  # I (routine)
        "codes": ["icd10cm|M24.41*", "icd10cm|M25.31*", "snomed|298854003", "snomed|30556007"],
    },
    "proximal-humerus-fracture": {  # I (urgent)
        "label": "proximal humerus fracture",
        "structural": False,
        "codes": ["icd10cm|S42.2*", "snomed|42636007", "snomed|208242007", "snomed|208241000", "snomed|73244003"],
    },
}

# spec 2.4 — hip groups
HIP_GROUPS: dict[str, Any] = {
    "hip-oa": {
        "label": "hip osteoarthritis",
        "structural": True,  # E, M, S (with a degenerative radiograph)
        "codes": ["icd10cm|M16*", "snomed|239872002", "snomed|201835007", "snomed|77994009"],
    },
    "gtps": {
        "label": "greater trochanteric pain syndrome",
        "structural": False,  # E, M
        "codes": ["icd10cm|M70.6*", "icd10cm|M70.7*", "icd10cm|M76.0*", "snomed|7674000", "snomed|81498004"],
    },
    "fai-labral-tear": {
        "label": "FAI / acetabular labral tear",
        "structural": True,  # S; SNOMED UNCONFIRMED: LOCAL
        "codes": ["local|dx-fai", "local|dx-hip-labral-tear"],
    },
    "hip-avn": {  # I (urgent)
        "label": "osteonecrosis of the femoral head",
        "structural": False,
        "codes": [
            "icd10cm|M87.05*",
            "icd10cm|M87.15*",
            "icd10cm|M87.25*",
            "icd10cm|M87.35*",
            "icd10cm|M87.85*",
            "snomed|203476003",
        ],
    },
    "hip-fracture": {  # I (urgent)
        "label": "hip fracture",
        "structural": False,
        "codes": [
            "icd10cm|S72.0*",
            "icd10cm|S72.1*",
            "icd10cm|S72.2*",
            "icd10cm|S32.4*",
            "icd10cm|M80.05*",
            "icd10cm|M84.35*",
            "snomed|359820003",
            "snomed|79484004",
            "snomed|127287001",
            "snomed|89820008",
            "snomed|263229001",
            "snomed|301034006",
            "snomed|409666003",
            "snomed|64455005",
            "snomed|33118001",
        ],
    },
}

# spec 2.5 — patient-level groups (chronic pain: the 1.1 group, kept from the shipped data)
PATIENT_GROUPS: dict[str, Any] = {
    "inflammatory": {
        "label": "inflammatory arthritis",
        "structural": False,
        "codes": [
            "icd10cm|M05*",
            "icd10cm|M06*",
            "icd10cm|L40.5*",
            "icd10cm|M10*",
            "icd10cm|M1A*",
            "icd10cm|M11.2*",
            "icd10cm|M35.3*",
            "icd10cm|M45*",
            "snomed|69896004",
            "snomed|239791005",
            "snomed|239792003",
            "snomed|90560007",
            "snomed|190828008",
            "snomed|73877009",
            "snomed|201637001",
            "snomed|9631008",
            "snomed|417373000",
            "snomed|416956002",
        ],
    },
}

# Findings the joint steps read. `clinical`: read by steps, never a red flag (spec 2.5, 2.2).
# recent-trauma: spec 6 (minor); read by the young traumatic cuff tear (5.7).
FINDINGS: dict[str, Any] = {
    "inflammatory-features": {
        "label": "inflammatory features",
        "severity": "clinical",
        "codes": ["local|inflammatory-features"],
    },
    "knee-mechanical-symptoms": {
        "label": "knee mechanical symptoms (catching or locking)",
        "severity": "clinical",
        "codes": ["local|knee-mechanical-symptoms"],
    },
    "recent-trauma": {"label": "recent trauma", "severity": "minor", "codes": ["snomed|417746004"]},
}

# spec 3 — joint measures (codes: codes-joints.csv; no LOINC for QuickDASH, SPADI, LEFS)
MEASURES: dict[str, dict[str, Any]] = {
    "knee": {
        "koos-jr": {
            "label": "KOOS JR",
            "codes": ["loinc|82332-8", "loinc|82324-5"],
            "better": "higher",
            "mcid_points": 15,
        },
        "lefs": {"label": "LEFS", "codes": ["local|lefs-score"], "better": "higher", "mcid_points": 9},
    },
    "hip": {
        "hoos-jr": {
            "label": "HOOS JR",
            "codes": ["loinc|82323-7", "loinc|82316-1"],
            "better": "higher",
            "mcid_points": 18,
        },
        "lefs": {"label": "LEFS", "codes": ["local|lefs-score"], "better": "higher", "mcid_points": 9},
    },
    "shoulder": {
        "quickdash": {"label": "QuickDASH", "codes": ["local|quickdash-score"], "better": "lower", "mcid_points": 11},
        "spadi": {"label": "SPADI", "codes": ["local|spadi-total"], "better": "lower", "mcid_points": 13},
    },
}

GROUPS = {"knee": KNEE_GROUPS, "hip": HIP_GROUPS, "shoulder": SHOULDER_GROUPS}
E_GROUPS = ["knee-oa", "subacromial-pain", "adhesive-capsulitis", "glenohumeral-oa", "hip-oa", "gtps"]  # spec 2, E
M_GROUPS = ["knee-oa", "glenohumeral-oa", "subacromial-pain", "hip-oa", "gtps"]  # spec 2, M
I_GROUPS = [
    "bucket-handle-meniscal-tear",
    "knee-instability",
    "knee-fracture",
    "shoulder-instability",
    "proximal-humerus-fracture",
    "hip-avn",
    "hip-fracture",
]  # spec 2, I
URGENT_I_GROUPS = [
    "bucket-handle-meniscal-tear",
    "knee-fracture",
    "proximal-humerus-fracture",
    "hip-avn",
    "hip-fracture",
]  # spec 5.7: urgent; instability routine


# spec 5.1 — the joint checkpoint table without the imaging engineer's rows (1.1's imaging row stands in)
def checkpoint_rows(e_groups: list[str], m_groups: list[str]) -> list[dict[str, Any]]:
    return [
        {"step": "progress-check", "when": {"not": "evaluable"}, "next": {"weeks": 2}, "repeatable": True},
        {
            "step": "imaging",
            "when": {"all": [{"fired": "reassessment"}, {"not": "imaging_since_t0"}]},
            "next": {"weeks": 6},
        },  # stand-in: 5.1 imaging row (+ 6 weeks)
        {
            "step": "adherence",
            "when": {"all": [{"not": {"fired": "reassessment"}}, {"not": "adherent"}]},
            "next": {"weeks": 4},
        },  # v1
        {"step": "reassessment", "when": {"any": ["adherent", {"fired": "adherence"}]}, "next": {"weeks": 4}},  # v1
        # 5.1 injection: reassessment fired, a confirmed E diagnosis and region imaging on record (v1: image first)
        {
            "step": "injection",
            "when": {"all": [{"fired": "reassessment"}, "imaging_since_t0", {"diagnosis": e_groups}]},
            "next": {"weeks": 6, "from_injection_done": True},
        },
        # 5.1 surgical-consult (a): a qualified confirmed S diagnosis, and (i) after the injection at the checkpoint
        # injection or relapse set, or (ii) no confirmed E diagnosis on record; tried before medication
        {
            "step": "surgical-consult",
            "when": {
                "all": [
                    {"fired": "reassessment"},
                    "surgical_candidate",
                    {
                        "any": [
                            {
                                "all": [
                                    {"fired": "injection"},
                                    {"any": [{"checkpoint_set_by": "injection"}, {"checkpoint_set_by": "relapse"}]},
                                ]
                            },
                            {"not": {"diagnosis": e_groups}},
                        ]
                    },
                ]
            },
            "next": "none",
        },
        {
            "step": "medication",
            "when": {"all": [{"fired": "reassessment"}, {"diagnosis": m_groups}]},
            "next": {"weeks": 6},
        },  # 5.1 medication
    ]


KNEE_OA_MEDICATION = (  # spec 5.6, knee OA
    "Topical NSAID first (NICE NG226; OARSI 2019 level 1A); oral NSAID with gastroprotection if topical is "
    "ineffective or unsuitable; paracetamol and weak opioids not routinely; no strong opioids or glucosamine "
    "(NICE NG226)."
)
NSAID_MEDICATION = (  # spec 5.6, hip or glenohumeral OA, subacromial, GTPS
    "Consider topical or oral NSAID; oral with gastroprotection; paracetamol and weak opioids not routinely "
    "(NICE NG226)."
)
INJECTION_NOTES = {  # spec 5.5, exactly as written
    "knee-oa": (
        "Alternatives: genicular nerve block (CPT 64454) or radiofrequency ablation (CPT 64624) — limited evidence, "
        "often not covered; platelet-rich plasma (CPT 0232T) — limited, conflicting evidence, usually not covered. "
        "Hyaluronic acid is not proposed (AAOS 2021: not for routine use; NICE NG226: do not offer)."
    ),
    "subacromial-pain": (
        "Alternatives: platelet-rich plasma (CPT 0232T) for rotator cuff tendinopathy — limited evidence, usually not "
        "covered; suprascapular nerve block (LOCAL `nerve-block`)."
    ),
    "adhesive-capsulitis": "Alternative: suprascapular nerve block (LOCAL `nerve-block`).",
    "glenohumeral-oa": "Alternative: suprascapular nerve block (LOCAL `nerve-block`).",
    "hip-oa": "Image-guided. Guidelines differ for the hip (ACR/AF 2019 for; OARSI 2019 against).",
    "gtps": (
        "Education plus exercise outperformed injection at 52 weeks (LEAP). Alternative: platelet-rich plasma "
        "(CPT 0232T) — limited evidence, usually not covered."
    ),
}
INJECTION_CODES = {  # spec 5.5 ServiceRequest codes (SNOMED UNCONFIRMED → LOCAL)
    "knee-oa": ["snomed|231274008|Injection of steroid into joint", "cpt|20610"],
    "subacromial-pain": ["local|subacromial-steroid-injection|Subacromial corticosteroid injection", "cpt|20610"],
    "adhesive-capsulitis": ["snomed|231274008|Injection of steroid into joint", "cpt|20611"],
    "glenohumeral-oa": ["snomed|231274008|Injection of steroid into joint", "cpt|20611"],
    "hip-oa": ["snomed|231274008|Injection of steroid into joint", "cpt|20611"],
    "gtps": ["local|trochanteric-steroid-injection|Peritrochanteric corticosteroid injection", "cpt|20610"],
}
PT_APPROACH_NOTE = (  # spec 5.3 item 3
    "Adherent non-responder: consider a different therapist or a Mechanical Diagnosis and Therapy assessment "
    "(LOCAL `mdt-mckenzie`)"
)

# spec 5.8 — surgery codes per region (SNOMED unless CPT); in 2.0 they are EpisodeLine.surgery
SURGERY: dict[str, list[str]] = {
    "knee": [
        f"snomed|{c}"
        for c in (
            "609588000",
            "443681002",
            "443682009",
            "444463001",
            "19063003",
            "179344006",
            "179351002",
            "265170009",
            "265172001",
            "309431009",
            "84877006",
            "8874001",
            "6148000",
            "239431009",
            "55244002",
            "179342005",
            "6240004",
        )
    ]
    + [f"cpt|{c}" for c in ("27447", "29880", "29881", "29882", "29883")],
    "shoulder": [
        f"snomed|{c}" for c in ("42262007", "61774002", "56060000", "66692001", "59213002", "12660003", "78559005")
    ]
    + ["cpt|23472", "cpt|29827"],
    "hip": [
        f"snomed|{c}"
        for c in (
            "52734007",
            "398010007",
            "386649003",
            "265160007",
            "112727005",
            "265132005",
            "15163009",
            "179304004",
            "265157000",
            "265158005",
            "314489006",
        )
    ]
    + [f"cpt|{c}" for c in ("27130", "27125", "29914", "29915", "29916")],
}


# spec 5.4 — region radiographs (recorded); the imaging rules own them, here `facts.imaging` stands in
RADIOGRAPHS: dict[str, list[str]] = {
    "knee": ["cpt|73560", "cpt|73562", "cpt|73564", "cpt|73565", "local|xr-knee"],
    "shoulder": ["cpt|73020", "cpt|73030", "snomed|783543007"],
    "hip": ["cpt|73501", "cpt|73502", "cpt|73503", "cpt|73521", "cpt|73522", "cpt|73523", "snomed|783628002"],
}


def joint_steps(region: str) -> dict[str, Any]:
    """The joint configuration of the steps (spec 5.3 – 5.8), as data over the 1.1 steps."""
    injection_items = [
        {
            "item": f"inject-{g}",
            "kind": "ServiceRequest",
            "codes": INJECTION_CODES[g],
            "text": "Corticosteroid injection ({region}).",
            "note": INJECTION_NOTES[g],
        }
        for g in E_GROUPS
    ]
    return {
        "reassessment": {
            # spec 5.3: the first specialty whose condition holds (diagnoses whether or not confirmed)
            "second_opinion": [
                {
                    "variant": "rheumatology",
                    "when_diagnosis": "inflammatory",  # 2.5: group or LOCAL finding
                    "when_findings": ["inflammatory-features"],
                    "findings_since_days_before_t0": 30,
                },
                {"variant": "orthopaedic", "when_structural": True},
                {"variant": "pain-management", "when_diagnosis": "chronic-pain"},
                {"variant": "sport-exercise-medicine"},
            ],
            "adherent_only": ["pt-approach-change"],  # spec 5.3 item 3: only when adherent at this checkpoint
            "proposals+": [
                {
                    "item": "pt-approach-change",
                    "kind": "ServiceRequest",
                    "codes": ["snomed|308447003|Referral to physiotherapist"],
                    "reason_codes": ["local|pt-approach-change|Change of PT approach"],
                    "text": "Referral to physiotherapist: change of PT approach.",
                    "note": PT_APPROACH_NOTE,
                },
            ],
            "variants+": {
                "rheumatology": {"label": "rheumatologist", "codes": ["snomed|306290009|Referral to rheumatologist"]},
                "sport-exercise-medicine": {
                    "label": "sport and exercise medicine",
                    "codes": ["snomed|715962007|Referral to sport and exercise medicine service"],
                },
            },
        },
        "injection": {
            "diagnosis_groups": E_GROUPS,
            "items_by_group": {g: f"inject-{g}" for g in E_GROUPS},  # spec 5.5: one ServiceRequest per E group
            "with_medication": True,  # spec 5.1 injection row, ruling 10
            "proposals": [
                *injection_items,
                {
                    "item": "modify-pt",
                    "kind": "Task",
                    "codes": ["local|modify-pt-programme|Modify the PT programme"],
                    "text": "Modify the PT programme alongside the injection.",
                },
            ],
            "explanation": "{diagnoses} on record; imaging: {imaging}; not responding after reassessment: "
            "{measures}. Proposed: corticosteroid injection ({region}) with a modified PT programme.",
        },
        "medication": {
            "diagnosis_groups": [*M_GROUPS, "chronic-pain"],
            # spec 5.6: the note of the first matching group, in this order
            "items_by_group": {
                "knee-oa": "review-knee-oa",
                "hip-oa": "review-nsaid",
                "glenohumeral-oa": "review-nsaid",
                "subacromial-pain": "review-nsaid",
                "gtps": "review-nsaid",
                "chronic-pain": "medication-review",
            },
            "first_group_only": True,
            "proposals": [
                {
                    "item": "review-knee-oa",
                    "kind": "ServiceRequest",
                    "codes": ["snomed|182836005|Review of medication"],
                    "text": "Medication review.",
                    "note": KNEE_OA_MEDICATION,
                },
                {
                    "item": "review-nsaid",
                    "kind": "ServiceRequest",
                    "codes": ["snomed|182836005|Review of medication"],
                    "text": "Medication review.",
                    "note": NSAID_MEDICATION,
                },
                {
                    "item": "medication-review",
                    "kind": "ServiceRequest",  # v1 wording (chronic pain)
                    "codes": ["snomed|182836005|Review of medication"],
                    "text": "Medication review for neuropathic pain (neuropathic agents, muscle relaxants).",
                },
            ],
            "explanation": "{diagnoses} on record; not responding: {measures}. Proposed: medication review.",
        },
        "surgical-consult": {
            "fact_groups": I_GROUPS,
            "urgent_groups": URGENT_I_GROUPS,
            "fact_since_days_before_t0": 30,  # spec 5.2 (b): recorded on or after the first PT visit − 30 days
            "qualifiers": {  # spec 5 "Structural for referral"; ruling 6
                "knee-oa": {"degenerative_radiograph": True},
                "hip-oa": {"degenerative_radiograph": True},
                "glenohumeral-oa": {"degenerative_radiograph": True},
                "meniscal-tear": {"findings": ["knee-mechanical-symptoms"], "findings_since_days_before_t0": 30},
                "adhesive-capsulitis": {"after_injection": True},
            },
            "young_traumatic": {  # spec 5.7
                "groups": ["full-thickness-cuff-tear"],
                "traumatic_groups": ["traumatic-cuff-tear"],
                "trauma_findings": ["recent-trauma"],
                "trauma_window_days": 42,
                "younger_than_years": 65,
            },
            "variants+": {
                region: {"label": "orthopaedic surgeon", "codes": ["snomed|308481009|Referral to orthopedic surgeon"]}
            },
        },
        "post-op-pt": {
            "title": "Post-operative PT",
            "description": "PT after knee, shoulder or hip surgery.",
            "applies_when": "A completed surgery Procedure at or after the first finished PT visit, aged "
            "{min_age_years} or over (or of unknown age).",
            "priority": "routine",  # ruling 15
            "surgery": SURGERY[region],
            "min_age_years": 18,  # ruling 9
            "proposals": [
                {
                    "item": "referral",
                    "kind": "ServiceRequest",
                    "codes": ["snomed|308447003|Referral to physiotherapist"],
                    "reason_codes": ["local|post-operative-rehabilitation|Post-operative rehabilitation"],
                    "text": "Referral to physiotherapist: post-operative rehabilitation ({procedure}).",
                },
                {
                    "item": "task",
                    "kind": "Task",
                    "codes": ["sdohcc|make-contact|Make Contact"],  # ruling 15
                    "text": "Arrange post-operative PT ({procedure}).",
                },
            ],
            "explanation": "Completed {procedure}: post-operative rehabilitation with a physiotherapist.",
        },
    }


def _merge_step(step: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if key == "proposals+":
            step["proposals"] = [*step["proposals"], *value]
        elif key == "variants+":
            template = next(p for p in step["proposals"] if "variants" in p)
            template["variants"] = {**template["variants"], **value}
        else:
            step[key] = value


@cache
def joint_definition(region: str) -> Definition:
    """pt-nonresponse 1.1.0 data as a single `region` line with the joint steps (spec 2.0, section 5)."""
    data = copy.deepcopy(parse_located(SHIPPED_VERSIONS[1].read_text())[0])
    data["version"] = "2.0.0"
    data["regions"] = {"default": region}
    data["diagnoses"] = {**GROUPS[region], **PATIENT_GROUPS, "chronic-pain": data["diagnoses"]["chronic-pain"]}
    data["neurological"]["diagnosis_groups"] = ["chronic-pain"]  # no radicular group here; unused by joint rows
    data["measures"] = {key: data["measures"][key] for key in ("pain", "psfs")} | MEASURES[region]
    data["findings"] = {**data["findings"], **FINDINGS}
    groups = set(GROUPS[region]) | {"chronic-pain"}
    e_groups = [g for g in E_GROUPS if g in groups]
    m_groups = [g for g in [*M_GROUPS, "chronic-pain"] if g in groups]
    data["checkpoint_rows"] = checkpoint_rows(e_groups, m_groups)
    data["facts"]["imaging"] = [*data["facts"]["imaging"], *RADIOGRAPHS[region]]
    data["fact_steps"] = ["injection", "medication", "surgical-consult", "post-op-pt"]
    steps = data["steps"]
    del steps["red-flags"]["expected_signs"]  # the joint expected signs are the red-flag rules' (section 6)
    # 1.1's imaging step stands in for the radiographs of 5.4 (the imaging rules replace it)
    imaging = next(p for p in steps["imaging"]["proposals"] if p["item"] == "mri")
    imaging["variants"] = {region: {"label": region, "codes": ["local|xr-knee|Radiographs (stand-in)"]}}
    ct = next(p for p in steps["imaging"]["proposals"] if p["item"] == "ct")
    ct["variants"] = {region: {"label": region, "codes": ["local|xr-knee|Radiographs (stand-in)"]}}
    for step_id, changes in joint_steps(region).items():
        if step_id in steps:
            _merge_step(steps[step_id], changes)
        else:
            steps[step_id] = changes
    for step_id in ("injection", "medication"):  # only the joint groups of this region, and their items
        step = steps[step_id]
        step["diagnosis_groups"] = [g for g in step["diagnosis_groups"] if g in groups]
        by_group = step["items_by_group"]
        kept = {g: item for g, item in by_group.items() if g in groups}
        dropped = set(by_group.values()) - set(kept.values())
        step["items_by_group"] = kept
        step["proposals"] = [p for p in step["proposals"] if p["item"] not in dropped]
    consult = steps["surgical-consult"]
    consult["fact_groups"] = [g for g in I_GROUPS if g in groups]
    consult["urgent_groups"] = [g for g in URGENT_I_GROUPS if g in groups]
    consult["qualifiers"] = {g: q for g, q in consult["qualifiers"].items() if g in groups}
    if "full-thickness-cuff-tear" not in groups:
        del consult["young_traumatic"]
    consult["proposals"][0]["variants"] = {region: consult["proposals"][0]["variants"][region]}
    return build_definition(data)
