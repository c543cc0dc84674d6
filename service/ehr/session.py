"""The one HTTP session factory for every call to the EHR: FHIR requests and SMART token requests alike."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter


def new_session() -> requests.Session:
    """A `requests.Session` that never retries on its own."""
    session = requests.Session()
    # Explicitly zero retries: only the Celery task decides to try again, so an EHR outage is
    # never hammered by two retry layers.
    adapter = HTTPAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
