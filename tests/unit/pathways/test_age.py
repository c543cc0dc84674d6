"""Age from Patient.birthDate (spec 2.0, ruling 14): whole years, a birthday counts from its first moment."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pathways.rules.age import age_at, younger_than


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("born", "moment", "age"),
    [
        (date(2008, 3, 2), "2026-03-01T23:59:59", 17),  # the day before the 18th birthday
        (date(2008, 3, 2), "2026-03-02T00:00:00", 18),  # 18 from that birthday on
        (date(2008, 1, 1), "2026-01-01T00:00:00", 18),  # `2008` is read as 1 January 2008
        (date(2008, 5, 1), "2026-04-30T12:00:00", 17),  # `2008-05` as 1 May
        (date(2008, 2, 29), "2026-02-28T12:00:00", 17),  # a leap-day birthday …
        (date(2008, 2, 29), "2026-03-01T00:00:00", 18),  # … counts on 1 March in a common year
        (date(2008, 2, 29), "2028-02-29T00:00:00", 20),  # and on the day in a leap year
        (date(1961, 6, 15), "2026-06-14T08:00:00", 64),
        (date(1961, 6, 15), "2026-06-15T08:00:00", 65),
        (None, "2026-06-15T08:00:00", None),
    ],
)
def test_age_in_whole_years(born: date | None, moment: str, age: int | None) -> None:
    assert age_at(born, at(moment)) == age


def test_an_unknown_birth_date_reads_as_each_rule_says() -> None:
    moment = at("2026-01-01T00:00:00")
    assert younger_than(None, 18, moment, unknown=False) is False  # joint episodes: unknown = adult
    assert younger_than(None, 65, moment, unknown=True) is True  # acute cuff tear: unknown counts as younger
    assert younger_than(date(2010, 1, 1), 18, moment, unknown=False) is True
    assert younger_than(date(1950, 1, 1), 65, moment, unknown=True) is False
