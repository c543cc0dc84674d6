"""POST one JSON alert to the configured webhook, once: Celery retries, never this module.

The URL may carry a secret (a token in its path or query), so no message, log line or exception
chained from here ever includes it: a failure is described by what happened, not where.
"""

from __future__ import annotations

from typing import Any

import requests

TIMEOUT = (5.0, 10.0)  # connect, read: an alert receiver answers at once or is treated as down


class WebhookUnavailable(Exception):
    """The webhook did not take the alert (no answer, or not a 2xx); worth trying again later."""


def post_alert(url: str, body: dict[str, Any], idempotency_key: str) -> None:
    """Send `body` as JSON; raise WebhookUnavailable unless the receiver answers 2xx."""
    headers = {"Idempotency-Key": idempotency_key}
    try:
        response = requests.post(url, json=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        # requests' own message names the URL: keep only the kind of failure, and drop the chain.
        raise WebhookUnavailable(f"the alert webhook did not answer ({type(error).__name__})") from None
    if not 200 <= response.status_code < 300:
        raise WebhookUnavailable(f"the alert webhook answered {response.status_code}")
