"""A patient's age at a clinical moment, from `Patient.birthDate` (spec 2.0, ruling 14).

A partial birthDate is read as its earliest day (`1970` as 1 January 1970, `1970-05` as 1 May),
as the inbound mapping records it; a person is N years old from their Nth birthday on, in UTC.
Someone born on 29 February turns a year older on 1 March in a year without one. An unknown
birthDate has no age: each rule says how it reads that (an adult for the joint episodes' minimum
age, younger than 65 for an acute cuff tear).
"""

from __future__ import annotations

from datetime import date, datetime


def birthday(born: date, year: int) -> date:
    """The birthday in `year`; 29 February falls on 1 March in a year without it."""
    try:
        return born.replace(year=year)
    except ValueError:
        return date(year, 3, 1)


def age_at(born: date | None, moment: datetime) -> int | None:
    """Whole years completed at `moment` (UTC), or None when the birthDate is unknown."""
    if born is None:
        return None
    today = moment.date()
    years = today.year - born.year
    return years if today >= birthday(born, today.year) else years - 1


def younger_than(born: date | None, years: int, moment: datetime, *, unknown: bool) -> bool:
    """Whether the patient is younger than `years` at `moment`; `unknown` is the answer without a birthDate."""
    age = age_at(born, moment)
    return unknown if age is None else age < years
