"""The Subscription topic Carepath ships, and one patient's filters on every resource it covers."""

from __future__ import annotations

import json

from tests.processes import ROOT

TOPIC_FILE = ROOT / "deploy" / "topic-pt-intake.json"
"""The topic Carepath ships (a production file, documented in the README)."""


def _filter_parameters() -> dict[str, str]:
    """Each resource the topic covers, and the parameter it may be filtered on (`patient`, `_id`)."""
    topic = json.loads(TOPIC_FILE.read_text())
    found = {}
    for extension in topic["extension"]:
        if extension["url"].endswith("SubscriptionTopic.canFilterBy"):
            parts = {part["url"]: part for part in extension["extension"]}
            found[parts["resource"]["valueUri"]] = parts["filterParameter"]["valueString"]
    return found


def patient_filters(patient: str) -> tuple[str, ...]:
    """One patient's filter on every resource the shipped topic covers: no other test's writes are notified."""
    value = {"patient": f"Patient/{patient}", "_id": patient}
    return tuple(f"{resource}?{parameter}={value[parameter]}" for resource, parameter in _filter_parameters().items())
