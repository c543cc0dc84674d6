"""The load generator: client processes with `requests` sessions, closed loop or paced open loop.

Closed loop (each client sends its next event as soon as the last is answered) finds the maximum
rate; bounded by a number of events, it sends exactly that many, as fast as they are accepted.
Open loop sends event k at start + k / rate whatever the server does, and times each
answer from that intended moment, so a stalled server cannot hide its queue (no coordinated
omission). Each client process reports the CPU it used, so the report can show how much of the
machine the load itself took.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import requests

from bench.events import EventFeed

REQUEST_TIMEOUT_SECONDS = 30
RESULT_TIMEOUT_SECONDS = 120
ACCEPTED = (200, 201)

Sample = tuple[float, float, float, int]  # intended, started, finished (epoch seconds), HTTP status


@dataclass(frozen=True)
class LoadResult:
    """What one load phase did, from the clients' side."""

    samples: list[Sample]
    started: float
    finished: float
    client_cpu_seconds: float
    first_event: int
    events_used: int

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.samples if s[3] in ACCEPTED)

    @property
    def errors(self) -> int:
        return len(self.samples) - self.accepted

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    @property
    def client_cpu_share(self) -> float:
        """CPU the load generator used, in cores (2.0 = both cores of this machine)."""
        return self.client_cpu_seconds / self.seconds


@dataclass(frozen=True)
class Plan:
    url: str
    headers: dict[str, str]
    first_event: int
    duration: float
    processes: int
    threads: int
    rate: float | None  # None: closed loop
    events: int | None = None  # closed loop: stop after this many events (`duration` is then only a bound)


_FEED: EventFeed | None = None  # set before forking: children read the parent's events copy-on-write


def run(feed: EventFeed, plan: Plan) -> LoadResult:
    """Run one phase with `plan.processes` client processes; return every sample."""
    global _FEED
    _FEED = feed
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    results = context.Queue()
    start_at = time.time() + 0.5  # every client starts the clock together
    children = [
        context.Process(target=_client, args=(plan, index, start_at, counter, results), daemon=True)
        for index in range(plan.processes)
    ]
    for child in children:
        child.start()
    collected = [results.get(timeout=plan.duration + RESULT_TIMEOUT_SECONDS) for _ in children]
    for child in children:
        child.join(timeout=10)
    samples = sorted(s for _, batch in collected for s in batch)
    used = counter.value if plan.rate is None else len(samples)
    return LoadResult(
        samples=samples,
        started=start_at,
        finished=max((s[2] for s in samples), default=start_at + plan.duration),
        client_cpu_seconds=sum(cpu for cpu, _ in collected),
        first_event=plan.first_event,
        events_used=used,
    )


def _client(plan: Plan, index: int, start_at: float, counter: Synchronized[int], results: Any) -> None:
    """One client process: `plan.threads` threads, each with its own session."""
    cpu_before = time.process_time()
    batches: list[list[Sample]] = [[] for _ in range(plan.threads)]
    if plan.rate is None:
        targets = [_closed_loop(plan, start_at, counter, batch) for batch in batches]
    else:
        lanes = plan.processes * plan.threads
        targets = [
            _open_loop(plan, start_at, index * plan.threads + lane, lanes, batch) for lane, batch in enumerate(batches)
        ]
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((time.process_time() - cpu_before, [s for batch in batches for s in batch]))


def _closed_loop(plan: Plan, start_at: float, counter: Synchronized[int], out: list[Sample]) -> Callable[[], None]:
    def loop() -> None:
        session = requests.Session()
        _sleep_until(start_at)
        deadline = start_at + plan.duration
        while (now := time.time()) < deadline:
            with counter.get_lock():
                number = counter.value
                if plan.events is not None and number >= plan.events:
                    return
                counter.value += 1
            out.append(_post(session, plan, plan.first_event + number, now))

    return loop


def _open_loop(plan: Plan, start_at: float, lane: int, lanes: int, out: list[Sample]) -> Callable[[], None]:
    assert plan.rate is not None
    interval = 1.0 / plan.rate
    total = int(plan.duration * plan.rate)

    def loop() -> None:
        session = requests.Session()
        for number in range(lane, total, lanes):
            intended = start_at + number * interval
            _sleep_until(intended)
            out.append(_post(session, plan, plan.first_event + number, intended))

    return loop


def _post(session: requests.Session, plan: Plan, number: int, intended: float) -> Sample:
    assert _FEED is not None
    resource_type, body = _FEED.event(number)
    started = time.time()
    try:
        response = session.post(
            f"{plan.url}/fhir/{resource_type}", data=body, headers=plan.headers, timeout=REQUEST_TIMEOUT_SECONDS
        )
        status = response.status_code
    except requests.RequestException:
        status = 0
    return intended, started, time.time(), status


def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)
