"""The role matrix: which roles may call which route. The one place access is decided.

Rules are tried in order; the first whose method and path match decides. A route no rule names
is for administrators only, so an endpoint added without a rule is never open by mistake.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from service.access.identity import ADMIN, COORDINATOR, EHR, Identity

OPEN = "open"  # no credentials: probes, scrapers and the contracts, on the internal network
ROLES = "roles"  # a token or JWT holding one of the rule's roles
NOTIFICATION = "notification"  # the subscription's own secret, or an `ehr` token

READ = ("GET", "HEAD")
WORK = (COORDINATOR,)
READERS = (COORDINATOR, ADMIN)  # administrators read everything coordinators read


@dataclass(frozen=True)
class Rule:
    methods: tuple[str, ...]
    pattern: str  # `{x}` is one path segment, a trailing `*` any rest
    kind: str
    roles: tuple[str, ...] = ()
    audit_reads: bool = False  # a read of patient data: recorded as an AuditEvent

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and _regex(self.pattern).fullmatch(path) is not None


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    escaped = re.escape(pattern).replace(r"\{x\}", r"[^/]+").replace(r"\*", r".*")
    return re.compile(escaped)


ANY = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

RULES: tuple[Rule, ...] = (
    Rule(READ, "/healthz", OPEN),
    Rule(READ, "/readyz", OPEN),
    Rule(READ, "/metrics", OPEN),
    Rule(READ, "/fhir/metadata", OPEN),
    Rule(READ, "/openapi.json", OPEN),
    Rule(ANY, "/ui*", OPEN),
    Rule(READ, "/", OPEN),  # sends a person's browser to the UI
    Rule(READ, "/favicon.ico", OPEN),  # the web UI signs people in with these same tokens and checks roles per page
    Rule(("POST", "PUT"), "/notifications*", NOTIFICATION, (EHR,)),
    Rule(READ, "/fhir/Task*", ROLES, READERS, audit_reads=True),
    Rule(READ, "/fhir/ServiceRequest*", ROLES, READERS, audit_reads=True),
    Rule(READ, "/fhir/Provenance*", ROLES, READERS, audit_reads=True),
    Rule(("POST",), "/fhir/{x}/_search", ROLES, READERS, audit_reads=True),  # a search; unserved types are 404 first
    Rule(("PATCH", "PUT"), "/fhir/Task/{x}", ROLES, WORK),
    Rule(("POST",), "/worklist/*", ROLES, WORK),
    Rule(READ, "/patients/{x}/evaluations", ROLES, READERS, audit_reads=True),
    Rule(READ, "/fhir/PlanDefinition/*", ROLES, READERS),
    Rule(("POST",), "/fhir/PlanDefinition/{x}/$apply", ROLES, READERS, audit_reads=True),
    Rule(("POST",), "/fhir", ROLES, (EHR,)),
    Rule(("POST",), "/fhir/", ROLES, (EHR,)),
    Rule(("POST",), "/fhir/{x}", ROLES, (EHR,)),
    Rule(("DELETE",), "/fhir/{x}/{x}", ROLES, (EHR,)),
    Rule(READ, "/admin/deadletters*", ROLES, (ADMIN,), audit_reads=True),  # they name patients
    Rule(READ, "/admin/deliveries*", ROLES, (ADMIN,), audit_reads=True),
    Rule(READ, "/admin/AuditEvent*", ROLES, (ADMIN,), audit_reads=True),
    Rule(ANY, "/admin/*", ROLES, (ADMIN,)),
)
DEFAULT = Rule(ANY, "*", ROLES, (ADMIN,))


def rule_for(method: str, path: str) -> Rule:
    """The rule deciding `method path`."""
    return next((rule for rule in RULES if rule.matches(method, path)), DEFAULT)


def allows(rule: Rule, identity: Identity) -> bool:
    return identity.role in rule.roles


def refusal(rule: Rule, identity: Identity) -> str:
    """Why `identity` may not do this, in words an operator can act on."""
    needed = " or ".join(rule.roles)
    held = f"the {identity.role} role" if identity.role else "no Carepath role"
    credential = "token" if identity.kind != "oidc" else "sign-in"
    return f"This action needs the {needed} role; your {credential} has {held}."
