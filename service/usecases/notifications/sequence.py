"""Event numbers of one subscription: which are new, which repeat, which went missing. Pure.

The EHR numbers a subscription's events 1, 2, 3...; `events-since-subscription-start` says how
many exist, including ones that were never delivered. Delivery may reorder, repeat or drop
notifications, so the ledger keeps the highest number up to which everything is accounted for
(`contiguous`), the numbers received above it, and the runs recovered some other way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

Run = tuple[int, int]  # inclusive event numbers


@dataclass(frozen=True)
class Ledger:
    """What one subscription has accounted for so far."""

    contiguous: int = 0  # every event up to here arrived or was recovered
    known: int = 0  # the highest event count the EHR has reported or sent
    seen: frozenset[int] = frozenset()  # numbers received above `contiguous`
    closed: tuple[Run, ...] = ()  # recovered runs above `contiguous`

    def accounted(self, number: int) -> bool:
        """True when `number` already arrived or was recovered: a repeat is not processed again."""
        return number <= self.contiguous or number in self.seen or any(lo <= number <= hi for lo, hi in self.closed)

    def filled(self, run: Run) -> bool:
        """True when every number of `run` has since arrived (late, not lost)."""
        low, high = max(run[0], self.contiguous + 1), run[1]
        if low > high:
            return True
        if high - low + 1 > len(self.seen):
            return False
        return all(n in self.seen for n in range(low, high + 1))


@dataclass(frozen=True)
class Step:
    """The result of receiving one notification's event numbers."""

    fresh: tuple[int, ...]  # process these
    duplicates: tuple[int, ...]  # acknowledge, do nothing
    gaps: tuple[Run, ...]  # runs newly found missing
    ledger: Ledger


def receive(ledger: Ledger, numbers: Iterable[int], reported: int | None = None) -> Step:
    """Take a notification's event numbers and its `events-since-subscription-start`."""
    fresh: list[int] = []
    duplicates: list[int] = []
    for number in numbers:
        (duplicates if ledger.accounted(number) or number in fresh else fresh).append(number)
    seen = ledger.seen | frozenset(fresh)
    known = max(ledger.known, reported or 0, max(fresh, default=0))
    gaps = missing_runs(ledger.known + 1, known, seen)
    updated = settle(replace(ledger, known=known, seen=seen))
    return Step(tuple(sorted(fresh)), tuple(duplicates), gaps, updated)


def close(ledger: Ledger, run: Run) -> Ledger:
    """Account for a run recovered without its notifications."""
    return settle(replace(ledger, closed=(*ledger.closed, run)))


def settle(ledger: Ledger) -> Ledger:
    """Advance `contiguous` over everything accounted for and forget what lies below it."""
    contiguous = ledger.contiguous
    while True:
        if contiguous + 1 in ledger.seen:
            contiguous += 1
            continue
        run_end = next((hi for lo, hi in ledger.closed if lo <= contiguous + 1 <= hi), None)
        if run_end is None:
            break
        contiguous = run_end
    return Ledger(
        contiguous=contiguous,
        known=max(ledger.known, contiguous),
        seen=frozenset(n for n in ledger.seen if n > contiguous),
        closed=tuple(run for run in ledger.closed if run[1] > contiguous),
    )


def missing_runs(low: int, high: int, present: Iterable[int]) -> tuple[Run, ...]:
    """The runs of `low..high` not in `present` (computed from `present`, not by counting)."""
    runs: list[Run] = []
    start = low
    for number in sorted({n for n in present if low <= n <= high}):
        if number > start:
            runs.append((start, number - 1))
        start = number + 1
    if start <= high:
        runs.append((start, high))
    return tuple(runs)
