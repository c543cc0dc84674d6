"""Every error the `carepath` command meets becomes one line on stderr and an exit status, never a traceback."""

from __future__ import annotations

from typing import Any

import click

EXIT_FAILED = 1
EXIT_USAGE = 2


def one_line(error: BaseException) -> str:
    """What went wrong, in one line an operator can act on."""
    from sqlalchemy import exc as database

    from pathways.definition import DefinitionError
    from service.problems import Problem
    from service.settings import SettingsError

    if isinstance(error, SettingsError | DefinitionError):
        return str(error)
    if isinstance(error, Problem):
        details = [str(i.get("diagnostics", "")) for i in error.outcome()["issue"] if i.get("diagnostics")]
        return "; ".join(details) or error.message
    if isinstance(error, database.OperationalError | database.ProgrammingError):
        return _database_line(error)
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    text = " ".join(str(error).split()) or "no detail"
    return f"{type(error).__name__}: {text[:300]}"


def _database_line(error: Any) -> str:
    first = " ".join(str(getattr(error, "orig", error)).split())[:200]
    if "no such table" in first or "does not exist" in first and "relation" in first:
        return "the database has no Carepath tables yet: run `carepath migrate` (or `carepath run`) first"
    # Never the URL: it may carry a password.
    return f"cannot use the database (DATABASE_URL): {first}"


def usage_line(error: click.UsageError) -> str:
    """A usage error and where to read more, on one line."""
    where = error.ctx.command_path if error.ctx else "carepath"
    return f"{error.format_message()} (see `{where} --help`)"
