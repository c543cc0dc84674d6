"""Carepath settings: the only module that reads the environment.

Every variable is listed in `ENVIRONMENT` with its default and meaning; the README's table is
generated from the same list (`carepath settings --markdown`), so the two cannot drift.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MEBIBYTE = 1024 * 1024
# SMART v2 scopes for what Carepath does on the EHR: writes (c), reads (r), patches and PUTs (u)
# and identifier searches after a conflict or for reconciliation (s) of its own orders; reads and
# searches of the clinical facts it follows; and its Subscriptions.
DEFAULT_EHR_SCOPES = (
    "system/Task.crus system/ServiceRequest.crus system/Provenance.crs system/Observation.rs "
    "system/Encounter.rs system/Condition.rs system/Procedure.rs system/DiagnosticReport.rs "
    "system/Subscription.crus"
)


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str


ENVIRONMENT: tuple[Variable, ...] = (
    Variable("CAREPATH_DATA_DIR", "./var", "Folder for the embedded SQLite database and broker files."),
    Variable(
        "DATABASE_URL",
        "sqlite:///$CAREPATH_DATA_DIR/carepath.db",
        "SQLAlchemy URL of the database; PostgreSQL in production (`postgresql+psycopg://...`).",
    ),
    Variable(
        "REDIS_URL",
        "(empty)",
        "Redis URL of the Celery broker. Empty: an embedded broker in a SQLite file "
        "(kombu's SQLAlchemy transport), still served to real worker processes.",
    ),
    Variable("HOST", "127.0.0.1", "Address the API listens on."),
    Variable("PORT", "8000", "Port the API listens on (`--port` overrides it)."),
    Variable("WEB_CONCURRENCY", "2", "gunicorn worker processes for the API."),
    Variable(
        "WEB_THREADS",
        "4",
        "Threads per API process (gunicorn's threaded worker): a request waiting on the database or the broker "
        "does not hold its process. 1: gunicorn's sync worker.",
    ),
    Variable("WORKER_CONCURRENCY", "2", "Celery worker processes per `carepath worker`."),
    Variable("EHR_BASE_URL", "(empty)", "FHIR base URL of the EHR. Empty: decisions stay local."),
    Variable(
        "EHR_AUTH",
        "bearer",
        "How to authenticate to the EHR: `none`, `bearer` or `smart` (SMART Backend Services).",
    ),
    Variable("EHR_TOKEN", "(empty)", "Bearer token for the EHR (never logged)."),
    Variable("EHR_CLIENT_ID", "(empty)", "`EHR_AUTH=smart`: the client id the EHR issued at registration."),
    Variable(
        "EHR_PRIVATE_KEY_FILE",
        "(empty)",
        "`EHR_AUTH=smart`: PEM private key signing the client assertions; RSA signs RS384, P-384 EC "
        "signs ES384 (`carepath keys generate`).",
    ),
    Variable("EHR_KEY_ID", "(JWK thumbprint)", "`EHR_AUTH=smart`: the `kid` of that key in the registered JWKS."),
    Variable("EHR_SCOPES", DEFAULT_EHR_SCOPES, "`EHR_AUTH=smart`: the scopes requested with each token."),
    Variable(
        "EHR_TOKEN_URL",
        "(discovered)",
        "`EHR_AUTH=smart`: token endpoint; empty: read from `$EHR_BASE_URL/.well-known/smart-configuration`.",
    ),
    Variable("EHR_CONNECT_TIMEOUT", "3.05", "Seconds to wait for a connection to the EHR."),
    Variable("EHR_READ_TIMEOUT", "20", "Seconds to wait for an EHR answer."),
    Variable(
        "PATHWAY_DEFINITION",
        "(shipped pt-nonresponse)",
        "Path of the pathway definition YAML to run; empty runs the shipped default.",
    ),
    Variable("MAX_BODY_BYTES", str(MEBIBYTE), "Largest request body accepted (larger: 413)."),
    Variable(
        "SWEEP_INTERVAL_SECONDS",
        "30",
        "How often beat sweeps due checkpoints, unprocessed events and undelivered decisions, reads Task "
        "changes from the EHR and checks the subscriptions' status there.",
    ),
    Variable(
        "STRANDED_AFTER_SECONDS",
        "120",
        "How long an event may stay unprocessed, or a delivery unfinished, before beat re-queues it.",
    ),
    Variable(
        "WORKER_HEARTBEAT_SECONDS",
        "10",
        "How often each worker records in the database that it is alive; /readyz and /metrics count a worker "
        "silent for three periods as gone.",
    ),
    Variable(
        "NOTIFICATION_BASE_URL",
        "(empty)",
        "Carepath's base URL as the EHR reaches it; `subscriptions register` points at `<it>/notifications`.",
    ),
    Variable(
        "HEARTBEAT_GRACE_SECONDS",
        "30",
        "Silence beyond a subscription's heartbeat period tolerated before /readyz reports it stale.",
    ),
    Variable(
        "GAP_GRACE_SECONDS",
        "10",
        "How long a missing subscription event may still arrive late before it is recovered from the EHR.",
    ),
    Variable(
        "OIDC_ISSUER",
        "(empty)",
        "OpenID Connect issuer whose JWTs the API accepts besides its own tokens (keys from its discovery "
        "document). Empty: API tokens only.",
    ),
    Variable("OIDC_AUDIENCE", "(empty)", "`aud` a JWT must carry; empty: not checked."),
    Variable(
        "OIDC_ROLE_CLAIM", "carepath_role", "JWT claim holding the caller's role: `ehr`, `coordinator` or `admin`."
    ),
    Variable(
        "TOKEN_CACHE_SECONDS",
        "5",
        "How long an API process trusts an API token it has verified before reading it again; a token revoked "
        "through another process is refused within this time (at once by the process that revoked it). 0: read "
        "on every request.",
    ),
    Variable(
        "SECRET_KEY",
        "(generated per process)",
        "Signs and encrypts the web UI's session cookies; every API process must share it. Empty: a random key "
        "per process on the embedded defaults (sign-ins end at restart; a warning is logged), and no web UI "
        "sign-in otherwise.",
    ),
    Variable("LOG_LEVEL", "INFO", "Log level."),
    Variable("LOG_FORMAT", "json", "`json` for machines, `console` for people."),
)


@functools.cache
def _process_secret_key() -> str:
    """One random key per process, made once: gunicorn forks its workers after reading settings, so they share it."""
    return secrets.token_urlsafe(32)


def _unset(value: str | None) -> bool:
    return value is None or value.strip() == ""


@dataclass(frozen=True)
class Settings:
    """Every setting Carepath reads, resolved once from the environment."""

    data_dir: Path = Path("./var")
    database_url: str = ""
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    web_concurrency: int = 2
    web_threads: int = 4
    worker_concurrency: int = 2
    ehr_base_url: str | None = None
    ehr_auth: str = "bearer"
    ehr_token: str | None = field(default=None, repr=False)
    ehr_client_id: str | None = None
    ehr_private_key_file: Path | None = None
    ehr_key_id: str | None = None
    ehr_scopes: str = DEFAULT_EHR_SCOPES
    ehr_token_url: str | None = None
    ehr_connect_timeout: float = 3.05
    ehr_read_timeout: float = 20.0
    pathway_definition: Path | None = None
    max_body_bytes: int = MEBIBYTE
    sweep_interval_seconds: float = 30.0
    stranded_after_seconds: float = 120.0
    notification_base_url: str | None = None
    heartbeat_grace_seconds: float = 30.0
    worker_heartbeat_seconds: float = 10.0
    gap_grace_seconds: float = 10.0
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_role_claim: str = "carepath_role"
    token_cache_seconds: float = 5.0
    secret_key: str | None = field(default=None, repr=False)
    secret_key_generated: bool = False
    log_level: str = "INFO"
    log_format: str = "json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return None if _unset(value) else value

        data_dir = Path(get("CAREPATH_DATA_DIR") or "./var")
        definition = get("PATHWAY_DEFINITION")
        secret_key = get("SECRET_KEY")
        # Only the embedded defaults may invent a key: production runs several processes that must share one.
        generate_key = secret_key is None and get("REDIS_URL") is None
        return cls(
            data_dir=data_dir,
            database_url=get("DATABASE_URL") or f"sqlite:///{data_dir.resolve() / 'carepath.db'}",
            redis_url=get("REDIS_URL"),
            host=get("HOST") or "127.0.0.1",
            port=int(get("PORT") or 8000),
            web_concurrency=int(get("WEB_CONCURRENCY") or 2),
            web_threads=int(get("WEB_THREADS") or 4),
            worker_concurrency=int(get("WORKER_CONCURRENCY") or 2),
            ehr_base_url=(get("EHR_BASE_URL") or "").rstrip("/") or None,
            ehr_auth=(get("EHR_AUTH") or "bearer").lower(),
            ehr_token=get("EHR_TOKEN"),
            ehr_client_id=get("EHR_CLIENT_ID"),
            ehr_private_key_file=Path(key_file) if (key_file := get("EHR_PRIVATE_KEY_FILE")) else None,
            ehr_key_id=get("EHR_KEY_ID"),
            ehr_scopes=" ".join((get("EHR_SCOPES") or DEFAULT_EHR_SCOPES).split()),
            ehr_token_url=get("EHR_TOKEN_URL"),
            ehr_connect_timeout=float(get("EHR_CONNECT_TIMEOUT") or 3.05),
            ehr_read_timeout=float(get("EHR_READ_TIMEOUT") or 20),
            pathway_definition=Path(definition) if definition else None,
            max_body_bytes=int(get("MAX_BODY_BYTES") or MEBIBYTE),
            sweep_interval_seconds=float(get("SWEEP_INTERVAL_SECONDS") or 30),
            stranded_after_seconds=float(get("STRANDED_AFTER_SECONDS") or 120),
            notification_base_url=(get("NOTIFICATION_BASE_URL") or "").rstrip("/") or None,
            heartbeat_grace_seconds=float(get("HEARTBEAT_GRACE_SECONDS") or 30),
            worker_heartbeat_seconds=float(get("WORKER_HEARTBEAT_SECONDS") or 10),
            gap_grace_seconds=float(get("GAP_GRACE_SECONDS") or 10),
            oidc_issuer=(get("OIDC_ISSUER") or "").rstrip("/") or None,
            oidc_audience=get("OIDC_AUDIENCE"),
            oidc_role_claim=get("OIDC_ROLE_CLAIM") or "carepath_role",
            token_cache_seconds=float(get("TOKEN_CACHE_SECONDS") or 5),
            secret_key=secret_key or (_process_secret_key() if generate_key else None),
            secret_key_generated=generate_key,
            log_level=(get("LOG_LEVEL") or "INFO").upper(),
            log_format=(get("LOG_FORMAT") or "json").lower(),
        )

    @property
    def broker_url(self) -> str:
        """Redis when configured, else the embedded SQLite broker file."""
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{self.data_dir.resolve() / 'broker.db'}"

    @property
    def uses_embedded_broker(self) -> bool:
        return self.redis_url is None

    @property
    def ehr_configured(self) -> bool:
        return self.ehr_base_url is not None


def settings_table_markdown() -> str:
    """The README's settings table, from the same list the code reads."""
    rows = ["| Name | Default | Meaning |", "|---|---|---|"]
    rows += [f"| `{v.name}` | `{v.default}` | {v.meaning} |" for v in ENVIRONMENT]
    return "\n".join(rows)
