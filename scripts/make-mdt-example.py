"""Write docs/examples/pt-nonresponse-mdt.yaml: the shipped pt-nonresponse 1.1.0 plus the authored MDT step.

Run it after the shipped 1.1.0 changes (`.venv/bin/python scripts/make-mdt-example.py`);
tests/e2e/test_doc_examples.py fails until the example follows the shipped file again.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pathways" / "definition" / "shipped" / "pt-nonresponse-1.1.0.yaml"
EXAMPLE = ROOT / "docs" / "examples" / "pt-nonresponse-mdt.yaml"

SHIPPED_HEADER = "# Pathway definition: physical therapy that is not working (pt-nonresponse 1.1.0).\n"
HEADER = """\
# Example: pt-nonresponse 1.1.0 with one step an administrator authored (version 1.1.0-mdt.1).
# A referral for Mechanical Diagnosis and Therapy (MDT, McKenzie) between reassessment and
# imaging, for an adherent non-responder without neurological findings. Everything else is the
# shipped pt-nonresponse-1.1.0.yaml, unchanged: scripts/make-mdt-example.py writes this file
# from it, and tests/e2e/test_doc_examples.py checks that.
# Walk-through: docs/definition-format.md, "Example: an MDT referral between reassessment and imaging".
# Expected outcome: it uploads and validates with no problem; the journey
# docs/examples/mdt-candidate.json gets reassessment at 6 weeks, the MDT referral at 10 and
# imaging at 14 (its expect block in docs/examples/mdt-candidate.md says so exactly).
"""
VERSION = ("\nversion: 1.1.0\n", "\nversion: 1.1.0-mdt.1     # a local variant of 1.1.0: MDT added, first revision\n")
REASSESSMENT_ROW = """\
  - step: reassessment        # spec: adherent, or adherence has fired
    when: {any: [adherent, {fired: adherence}]}
    next: {weeks: 4}          # spec: + 4 weeks
"""
MDT_ROW = """\
  # Authored step (not a row of spec 1.1, which names MDT among the alternatives in "The
  # clinical reasoning", 5): after reassessment, an adherent patient without neurological
  # findings is referred for an MDT assessment before imaging; with neurological findings, or
  # once adherence has lapsed, imaging follows reassessment as shipped.
  - step: mdt
    when: {all: [{fired: reassessment}, adherent, {not: neurological}]}
    next: {weeks: 4}          # local choice: an MDT assessment and a few sessions before the next look
"""
IMAGING_STEP = "\n  imaging:\n    title:"
MDT_STEP = """
  mdt:
    title: Mechanical Diagnosis and Therapy
    description: A referral for a Mechanical Diagnosis and Therapy (McKenzie) assessment before imaging.
    applies_when: >-
      At a checkpoint, not responded, reassessment has fired, adherent, and no neurological
      findings.
    priority: routine
    proposals:
      - item: referral
        kind: ServiceRequest
        # ref §5 "MDT / McKenzie": no SNOMED CT concept is confirmed (codes.csv: UNCONFIRMED), so
        # 91251008 Physical therapy procedure, with the project's LOCAL code `mdt-mckenzie`
        # (codes.csv: proposed-local) as coding[1].
        codes:
          - snomed|91251008|Physical therapy procedure
          - local|mdt-mckenzie|Mechanical Diagnosis and Therapy (McKenzie) assessment
        text: Refer for a Mechanical Diagnosis and Therapy (McKenzie) assessment and treatment.
    explanation: >-
      {measures} after {weeks} weeks and {visits} PT visits; {adherence}: adherent, still not
      responding after reassessment and without neurological findings, so a Mechanical
      Diagnosis and Therapy assessment before imaging.
"""


def once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise SystemExit(f"the shipped 1.1.0 no longer holds exactly one {old.strip()[:60]!r}: update this script")
    return text.replace(old, new)


def main() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    text = once(text, SHIPPED_HEADER, HEADER)
    text = once(text, *VERSION)
    text = once(text, REASSESSMENT_ROW, REASSESSMENT_ROW + MDT_ROW)
    text = once(text, IMAGING_STEP, MDT_STEP + IMAGING_STEP)
    EXAMPLE.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
