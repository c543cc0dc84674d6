"""FHIR date search values as SQL conditions on instant columns."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from service.fhir.search_params import DateRange


def date_condition(wanted: DateRange, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[bool]:
    """The SQL condition FHIR's prefix semantics give for an instant column."""
    conditions = {
        "eq": sa.and_(column >= wanted.start, column < wanted.end),
        "ne": sa.or_(column < wanted.start, column >= wanted.end),
        "gt": column >= wanted.end,
        "lt": column < wanted.start,
        "ge": column >= wanted.start,
        "le": column < wanted.end,
    }
    return conditions[wanted.prefix]
