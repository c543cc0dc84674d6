"""The worklist pager says which rows are shown of how many: `1–50 of 63`."""

from __future__ import annotations

import pytest

from service.ui.worklist import PAGE, Filters, Page, Row


def rows(count: int) -> list[Row]:
    row = Row("t", 1, "stat", "red-flags", "p", "review", "", "1 hour", False, "requested", "", (), None)
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
    page = Page(rows(shown), total, Filters(offset=offset))
    assert (page.position, page.previous_offset, page.next_offset) == (position, previous, following)
    assert PAGE == 50
