"""Bundle intake: `batch` Bundles of cohort events POSTed to the API's base by client threads.

Bodies are assembled from the feed's ready-made JSON up front, so the clients spend their time
waiting on the API. Each answer is a batch-response Bundle; an entry counts as accepted when its
status is 201 (stored) or 200 (a duplicate of a stored event).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.events import EventFeed

ENTRIES_PER_BUNDLE = 100
CLIENT_THREADS = 8
REQUEST_TIMEOUT_SECONDS = 120
ACCEPTED_ENTRY = ("201", "200")


def bundle_bodies(feed: EventFeed, first_event: int, events: int) -> list[bytes]:
    """`events` events of the feed from `first_event`, as `batch` Bundles of ENTRIES_PER_BUNDLE entries."""
    bodies = []
    for start in range(first_event, first_event + events, ENTRIES_PER_BUNDLE):
        stop = min(start + ENTRIES_PER_BUNDLE, first_event + events)
        entries = b",".join(b'{"resource":%s}' % feed.event(number)[1] for number in range(start, stop))
        bodies.append(b'{"resourceType":"Bundle","type":"batch","entry":[%s]}' % entries)
    return bodies


def post_bundles(url: str, headers: dict[str, str], bodies: list[bytes]) -> dict[str, Any]:
    """POST every Bundle to `url`/fhir with CLIENT_THREADS threads; entries accepted per second.

    The time runs from the first send to the last answer.
    """
    local = threading.local()

    def post(body: bytes) -> tuple[float, int, int]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        sent = time.time()
        response = local.session.post(f"{url}/fhir", data=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
        if response.status_code != 200:
            return time.time() - sent, 0, body.count(b'{"resource":')
        statuses = [entry["response"]["status"].split()[0] for entry in json.loads(response.content)["entry"]]
        accepted = sum(1 for status in statuses if status in ACCEPTED_ENTRY)
        return time.time() - sent, accepted, len(statuses) - accepted

    cpu, started = time.process_time(), time.time()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        answers = list(pool.map(post, bodies))
    seconds = time.time() - started
    accepted = sum(a for _, a, _ in answers)
    ordered = sorted(answer for answer, _, _ in answers)
    return {
        "bundles": len(bodies),
        "entries_per_bundle": ENTRIES_PER_BUNDLE,
        "client_threads": CLIENT_THREADS,
        "entries_accepted": accepted,
        "entries_refused": sum(r for _, _, r in answers),
        "seconds": round(seconds, 2),
        "entries_per_s": round(accepted / seconds, 1),
        "bundle_answer_p50_s": round(ordered[len(ordered) // 2], 3),
        "bundle_answer_max_s": round(ordered[-1], 3),
        "load_generator_cpu_cores": round((time.process_time() - cpu) / seconds, 3),
    }
