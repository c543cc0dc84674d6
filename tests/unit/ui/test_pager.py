"""The worklist pager says which rows are shown of how many: `1–50 of 63`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.store.worklist import Copy, Delivery
from service.ui.worklist import PAGE, Filters, Member, Page, Row, whole_decisions


def rows(count: int) -> list[Row]:
    member = Member("t", 1, "review", "requested", "", False, (), None)
    row = Row(1, "stat", "red-flags", "Red flags", "p", "", "1 hour", False, (member,))
    return [row] * count


@pytest.mark.parametrize(
    ("offset", "shown", "total", "position", "previous", "following"),
    [
        (0, 50, 63, "1–50 of 63", None, 50),
        (50, 13, 63, "51–63 of 63", 0, None),
        (0, 1, 1, "1–1 of 1", None, None),
        (0, 50, 50, "1–50 of 50", None, None),
        (100, 0, 63, "0 of 63", 50, None),  # an offset past the end shows nothing
    ],
)
def test_the_pager_names_the_rows_shown_and_the_total(
    offset: int, shown: int, total: int, position: str, previous: int | None, following: int | None
) -> None:
    page = Page(rows(shown), total, Filters(offset=offset), shown)
    assert (page.position, page.previous_offset, page.next_offset) == (position, previous, following)
    assert PAGE == 50


def test_a_row_holding_a_decisions_two_tasks_counts_both_and_the_next_page_starts_after_them() -> None:
    page = Page(rows(49), 63, Filters(), 51)  # 49 rows: 47 of one Task, and two decisions of two
    assert (page.position, page.next_offset) == ("1–51 of 63", 51)


def copies(*decisions: int) -> list[Copy]:
    moment = datetime(2026, 1, 5, tzinfo=UTC)
    return [Copy({"id": f"t{i}"}, 1, moment, Delivery(d, None, False, False)) for i, d in enumerate(decisions)]


def test_a_page_keeps_the_tasks_of_its_last_decision_that_the_next_page_would_have_split_off() -> None:
    read = copies(1, 2, 3, 3, 3, 4)
    assert [c.resource["id"] for c in whole_decisions(read, 3)] == ["t0", "t1", "t2", "t3", "t4"]
    assert [c.resource["id"] for c in whole_decisions(read, 2)] == ["t0", "t1"]
    assert whole_decisions(copies(1, 2), 3) == copies(1, 2)
