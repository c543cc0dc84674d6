"""pt-nonresponse 2.0.0 (the draft, not yet served): the spine is 1.1.0's, the joints read their own rules."""

from __future__ import annotations

import re
from typing import Any

import yaml

from pathways.definition import SHIPPED_2_0, SHIPPED_VERSIONS, load_definition_file
from pathways.lines.views import line_view

V2 = load_definition_file(SHIPPED_2_0)


def data(path: Any) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_it_is_the_newest_shipped_version() -> None:
    assert V2.version == "2.0.0" and V2.status == "active"
    assert SHIPPED_VERSIONS[-1] == SHIPPED_2_0


def test_every_value_the_spine_reads_is_1_1_0s() -> None:
    v1, v2 = data(SHIPPED_VERSIONS[1]), data(SHIPPED_2_0)
    for key in ("systems", "episode", "task_due", "facts", "barriers", "neurological", "checkpoint_rows", "fact_steps"):
        assert v2[key] == v1[key], key
    for key, value in v1["measures"].items():
        assert {k: v for k, v in v2["measures"][key].items() if k != "line"} == value  # ODI names the spine
    for key, value in v1["findings"].items():
        assert v2["findings"][key] == value
    for key, value in v1["diagnoses"].items():
        assert {k: v for k, v in v2["diagnoses"][key].items() if k != "line"} == value
    assert v2["regions"]["default"] == v1["regions"]["default"]
    assert v2["regions"]["by_code"] == v1["regions"]["by_code"]
    red_flags = dict(v2["steps"]["red-flags"])
    red_flags["expected_signs"] = {"radicular": red_flags["expected_signs"]["radicular"]}
    red_flags["cluster"] = {k: v for k, v in red_flags["cluster"].items() if k != "alone_explanation"}
    assert red_flags == v1["steps"]["red-flags"]
    assert {k: v for k, v in v2["steps"].items() if k != "red-flags"} == {
        k: v for k, v in v1["steps"].items() if k != "red-flags"
    }


def test_knee_hip_and_shoulder_run_the_joint_table_and_the_spine_1_1s() -> None:
    lines = V2.regions.episode_lines
    assert lines is not None
    assert [line.id for line in lines.lines] == ["spine", "knee", "hip", "shoulder"]
    assert [line for line, _ in V2.line_definitions] == ["knee", "hip", "shoulder"]
    spine = line_view(V2, lines.line("spine"))
    assert spine.checkpoint_rows == (
        "progress-check",
        "adherence",
        "reassessment",
        "imaging",
        "injection",
        "surgical-consult",
        "medication",
    )
    weeks = {"knee": 6, "hip": 8, "shoulder": 12}  # spec 2.0 section 4
    for line_id, first in weeks.items():
        view = line_view(V2, lines.line(line_id))
        assert view.regions.default == line_id
        assert view.episode.first_checkpoint_weeks == first
        assert view.checkpoint_rows == (
            "progress-check",
            "imaging",
            "advanced-imaging",
            "imaging-conclusion",
            "adherence",
            "reassessment",
            "injection",
            "surgical-consult",
            "medication",
        )  # spec 2.0 5.1
        assert view.fact_steps == ("advanced-imaging", "injection", "medication", "surgical-consult", "post-op-pt")
        assert view.post_op_pt is not None and view.advanced_imaging is not None
        done = {c.code for c in view.injection_codes.codings}
        assert {"64454", "64624", "subacromial-steroid-injection", "trochanteric-steroid-injection"} <= done  # 5.5
        assert "62323" not in done  # an epidural is the spine's
    # spec 2.0 section 3: the progress check names the region's measures; the spine keeps 1.1's
    texts = {
        line_id: line_view(V2, lines.line(line_id)).progress_check.propose.proposals[0].text
        for line_id in ("spine", "knee", "hip", "shoulder")
    }
    assert texts == {
        "spine": "Administer the outcome measures (pain, ODI, PSFS).",
        "knee": "Administer the outcome measures (KOOS JR or LEFS, and pain with body site knee).",
        "hip": "Administer the outcome measures (HOOS JR or LEFS, and pain with body site hip).",
        "shoulder": "Administer the outcome measures (QuickDASH or SPADI, and pain with body site shoulder).",
    }


# reference/joints/codes-joints.csv: the codes marked UNCONFIRMED (candidates named there) and the
# LOCAL code each is replaced by. Spec 2.0: an UNCONFIRMED code is never sent or matched.
UNCONFIRMED_CANDIDATES = ("snomed|49076000", "snomed|1290407002", "snomed|396181006", "cpt|72192", "cpt|64418")
LOCAL_REPLACEMENTS = (
    "local|quickdash-score",
    "local|spadi-total",
    "local|lefs-score",
    "local|xr-knee",
    "local|subacromial-steroid-injection",
    "local|trochanteric-steroid-injection",
)


def test_no_unconfirmed_code_is_sent_or_matched_and_its_local_replacement_is() -> None:
    written = "\n".join(line.split("#", 1)[0] for line in SHIPPED_2_0.read_text(encoding="utf-8").splitlines())
    for candidate in UNCONFIRMED_CANDIDATES:
        assert not re.search(rf"{re.escape(candidate)}(?![\w-])", written), candidate
    for local in LOCAL_REPLACEMENTS:
        assert re.search(rf"{re.escape(local)}(?![\w-])", written), local
    proposed = _proposed_codes(data(SHIPPED_2_0))
    assert "local|subacromial-steroid-injection|Subacromial corticosteroid injection" in proposed  # the scan reads
    assert not [c for c in proposed if "hyaluron" in c.lower()]  # never proposed (spec 2.0 5.5)


def _proposed_codes(node: Any) -> list[str]:
    """The codes of every proposal template (a mapping with `kind` and `codes`) in the definition data."""
    if isinstance(node, list):
        return [c for item in node for c in _proposed_codes(item)]
    if not isinstance(node, dict):
        return []
    own = [str(c) for c in node.get("codes", [])] if "kind" in node else []
    return own + [c for value in node.values() for c in _proposed_codes(value)]
