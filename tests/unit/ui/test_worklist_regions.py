"""The worklist names the region each row's decision is of, and offers the active version's regions as a filter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pathways.definition import SHIPPED_1_1, SHIPPED_2_0, load_definition_file
from pathways.model import PATHWAY_STEP_SYSTEM
from service.access.identity import COORDINATOR, TOKEN, Identity
from service.store.worklist import RED_FLAGS, Copy, Delivery
from service.ui.worklist import PATIENT, Filters, Page, region_labels, rows_of

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CORA = Identity(name="Cora", role=COORDINATOR, kind=TOKEN)


def task(task_id: str, step: str) -> dict[str, Any]:
    return {
        "id": task_id,
        "status": "requested",
        "priority": "routine",
        "for": {"reference": "Patient/p1"},
        "authoredOn": "2026-03-01T09:00:00+00:00",
        "meta": {"tag": [{"system": PATHWAY_STEP_SYSTEM, "code": step}]},
    }


def copy(decision_id: int, step: str, region: str | None) -> Copy:
    delivery = Delivery(decision_id, None, False, False)
    return Copy(task(f"t{decision_id}", step), 1, NOW, delivery, region=region)


def test_a_row_names_its_episode_line_by_label_the_patient_for_a_red_flag_and_nothing_for_1x() -> None:
    regions = region_labels(load_definition_file(SHIPPED_2_0))
    found = rows_of(
        [
            copy(1, "progress-check", "knee"),
            copy(2, "red-flags", None),
            copy(3, "progress-check", None),
            copy(4, "progress-check", "elbow"),
        ],
        CORA,
        NOW,
        {},
        regions,
    )
    assert [r.region for r in found] == ["Knee", PATIENT, None, "Elbow"]  # a line the active version lacks: its id


def test_the_region_filter_offers_the_active_versions_lines_in_their_order_and_the_red_flags() -> None:
    regions = region_labels(load_definition_file(SHIPPED_2_0))
    choices = Page([], 0, Filters.of({"region": "knee"}), 0, regions=regions).region_choices
    assert [value for value, _ in choices] == ["", "spine", "knee", "hip", "shoulder", RED_FLAGS]
    assert dict(choices)["knee"] == "Knee"
    assert Filters.of({"region": "knee", "offset": "50"}).region == "knee"


def test_a_version_without_episode_lines_offers_only_the_red_flags() -> None:
    assert region_labels(load_definition_file(SHIPPED_1_1)) == {}
    choices = Page([], 0, Filters(), 0).region_choices
    assert [value for value, _ in choices] == ["", RED_FLAGS]
