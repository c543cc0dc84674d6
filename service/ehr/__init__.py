"""The EHR edge: a FHIR R4 client with one error taxonomy and pluggable authentication."""

from service.ehr.auth import Auth, BearerToken, NoAuth
from service.ehr.client import CreateResult, EhrClient
from service.ehr.errors import EhrConflict, EhrError, EhrRejected, EhrUnavailable

__all__ = [
    "Auth",
    "BearerToken",
    "CreateResult",
    "EhrClient",
    "EhrConflict",
    "EhrError",
    "EhrRejected",
    "EhrUnavailable",
    "NoAuth",
]
