"""Dry run: what would the pathway have proposed by `now`? (spec, "Evaluating as of a moment")"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pathways.definition.model import Definition
from pathways.model import ClinicalRecord, Evaluation
from pathways.replay import replay


def simulate(definition: Definition, records: Sequence[ClinicalRecord], now: datetime) -> list[Evaluation]:
    """Replay one patient's records in clinical-time order with the checkpoints that fall due.

    Records dated after `now` are ignored; facts at an instant go before a checkpoint at that
    instant. Nothing closes the proposed Tasks, so a red-flag hold lasts to the end.
    """
    return list(replay(definition, records, now).evaluations)
