"""The cohort as an endless feed of ready-to-send request bodies.

Bodies are serialized once, up front, so the clients spend their CPU on HTTP, not on JSON. When
a run needs more events than the cohort holds, the feed starts the cohort again as new patients
(`c1-…`, `c2-…`), so every event stays new to Carepath.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.cohort import Journey, event_stream

ROUND_PREFIX = b'"c0-p'  # every patient and resource id starts with it; the round number replaces the 0


@dataclass(frozen=True)
class EventFeed:
    types: tuple[str, ...]
    bodies: tuple[bytes, ...]

    @classmethod
    def of(cls, journeys: list[Journey]) -> EventFeed:
        stream = event_stream(journeys)
        return cls(
            tuple(r["resourceType"] for r in stream),
            tuple(json.dumps(r, separators=(",", ":")).encode() for r in stream),
        )

    def __len__(self) -> int:
        return len(self.bodies)

    def event(self, number: int) -> tuple[str, bytes]:
        """The `number`-th event: (resource type, JSON body); ids are fresh in every round."""
        round_number, index = divmod(number, len(self.bodies))
        body = self.bodies[index]
        if round_number:
            body = body.replace(ROUND_PREFIX, b'"c%d-p' % round_number).replace(
                b"Patient/c0-p", b"Patient/c%d-p" % round_number
            )
        return self.types[index], body
