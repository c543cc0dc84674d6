"""A one-line progress bar on a terminal: what is done, the rate per second and the time left."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 24
REDRAW_SECONDS = 0.2  # a terminal redrawn more often costs time and shows nothing more


class ProgressBar:
    """Redraws one line of `stream` (stderr on a terminal) as the load and then the evaluation go."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._phase = ""
        self._phase_began = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0

    def loading(self, bytes_read: int, bytes_total: int, lines: int, stored: int) -> None:
        elapsed = self._enter("load")
        rate = lines / elapsed if elapsed else 0.0
        # The ETA follows the bytes: the export's size is known before its line count is.
        left = (bytes_total - bytes_read) * elapsed / bytes_read if bytes_read else None
        self._draw(
            f"load     {_bar(bytes_read, bytes_total)} {_mb(bytes_read)}/{_mb(bytes_total)} MB"
            f"  {lines:,} lines, {stored:,} stored  {rate:,.0f} lines/s  ETA {_clock(left)}",
            final=bytes_read >= bytes_total,
        )

    def evaluating(self, patients_done: int, patients_total: int, events_done: int) -> None:
        elapsed = self._enter("evaluation")
        rate = patients_done / elapsed if elapsed else 0.0
        left = (patients_total - patients_done) / rate if rate else None
        self._draw(
            f"evaluate {_bar(patients_done, patients_total)} {patients_done:,}/{patients_total:,} patients"
            f"  {events_done:,} events  {rate:,.0f} patients/s  ETA {_clock(left)}",
            final=patients_done >= patients_total,
        )

    def close(self) -> None:
        if self._width:
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0

    def _enter(self, phase: str) -> float:
        now = time.monotonic()
        if phase != self._phase:
            self.close()
            self._phase, self._phase_began, self._drawn_at = phase, now, 0.0
        return now - self._phase_began

    def _draw(self, text: str, *, final: bool) -> None:
        now = time.monotonic()
        if not final and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)


def _bar(done: int, total: int) -> str:
    share = min(done / total, 1.0) if total else 1.0
    filled = round(share * BAR_WIDTH)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}"


def _mb(count: int) -> str:
    return f"{count / 1e6:,.1f}"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute:02d}:{second:02d}"
