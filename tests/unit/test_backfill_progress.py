"""The backfill's progress bar: counts, rate and time left on one redrawn line, nothing of a resource."""

from __future__ import annotations

import io

import pytest

from service.cli import progress
from service.cli.progress import ProgressBar


def test_the_load_line_shows_the_share_read_the_counts_the_rate_and_the_time_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    bar = ProgressBar(stream)

    bar.loading(0, 4_000_000, 0, 0)
    now[0] += 10
    bar.loading(1_000_000, 4_000_000, 5_000, 4_900)

    last = stream.getvalue().split("\r")[-1]
    assert "25%" in last
    assert "1.0/4.0 MB" in last
    assert "5,000 lines, 4,900 stored" in last
    assert "500 lines/s" in last
    assert "ETA 00:30" in last  # a quarter read in 10 s: three quarters in 30 s


def test_the_evaluation_starts_on_a_new_line_with_its_own_rate_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.loading(10, 10, 1, 1)

    bar.evaluating(0, 300, 0)
    now[0] += 20
    bar.evaluating(100, 300, 3_200)
    bar.close()

    load, evaluation = stream.getvalue().rstrip("\n").split("\n")
    assert "100%" in load
    shown = " ".join(evaluation.split("\r")[-1].split())
    assert shown == "evaluate [########................] 33% 100/300 patients 3,200 events 5 patients/s ETA 00:40"
