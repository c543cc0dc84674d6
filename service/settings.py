"""Carepath settings: the only module that reads the environment.

Each setting is declared once, as a field of `Settings`: its variable, type, default, meaning and
what it accepts. Reading the environment, validating it and the README's table
(`carepath settings --markdown`) all come from those declarations, so they cannot drift.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MEBIBYTE = 1024 * 1024
# SMART v2 scopes for what Carepath does on the EHR: writes (c), reads (r), patches and PUTs (u)
# and identifier searches after a conflict or for reconciliation (s) of its own orders; reads and
# searches of the clinical facts it follows; its Subscriptions; and the Patient, whose name the UI shows.
DEFAULT_EHR_SCOPES = (
    "system/Task.crus system/ServiceRequest.crus system/Provenance.crs system/Observation.rs "
    "system/Encounter.rs system/Condition.rs system/Procedure.rs system/DiagnosticReport.rs "
    "system/Subscription.crus system/Device.crs system/Patient.r"
)
MAX_PORT = 65535
PATIENT_PLACEHOLDER = "{patient_id}"  # where EHR_CHART_URL takes the patient's id
FHIR_REFERENCE = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}")  # a relative literal reference, R4 id rules


class SettingsError(ValueError):
    """A variable holds a value Carepath cannot use; the message names it and what it accepts."""


@dataclass(frozen=True)
class Rule:
    """How a variable's text becomes a value, and what it accepts, in words for the error."""

    parse: Callable[[str], Any]
    accepts: str


def text() -> Rule:
    return Rule(str.strip, "any text")


def words() -> Rule:
    """Whitespace-separated words, kept with single spaces (scopes)."""
    return Rule(lambda value: " ".join(value.split()), "space-separated words")


def choice(*options: str) -> Rule:
    def parse(value: str) -> str:
        folded = value.strip().lower()
        if folded not in options:
            raise ValueError(value)
        return folded

    return Rule(parse, "one of " + ", ".join(f"`{option}`" for option in options))


def level() -> Rule:
    names = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    inner = choice(*(name.lower() for name in names))
    return Rule(lambda value: inner.parse(value).upper(), "one of " + ", ".join(f"`{name}`" for name in names))


def whole(low: int, high: int | None = None) -> Rule:
    def parse(value: str) -> int:
        number = int(value.strip(), 10)
        if number < low or (high is not None and number > high):
            raise ValueError(value)
        return number

    upper = f" to {high}" if high is not None else " or more"
    return Rule(parse, f"a whole number from {low}{upper}")


def seconds(*, zero_allowed: bool = False) -> Rule:
    def parse(value: str) -> float:
        number = float(value.strip())
        if not number == number or number in (float("inf"), float("-inf")):  # NaN or infinite
            raise ValueError(value)
        if number < 0 or (number == 0 and not zero_allowed):
            raise ValueError(value)
        return number

    return Rule(parse, "a number of seconds, 0 or more" if zero_allowed else "a number of seconds above 0")


def url(*schemes: str) -> Rule:
    """An absolute URL with one of `schemes`, without its trailing slash."""

    def parse(value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme.lower() not in schemes or not (parts.netloc or parts.path):
            raise ValueError(value)
        return value.strip().rstrip("/")

    return Rule(parse, "a URL starting " + " or ".join(f"`{scheme}://`" for scheme in schemes))


def chart_url() -> Rule:
    """An http(s) URL template naming `{patient_id}` once and nothing else in braces."""
    absolute = url(*HTTP)

    def parse(value: str) -> str:
        template: str = absolute.parse(value)
        if re.findall(r"{[^}]*}", template) != [PATIENT_PLACEHOLDER]:
            raise ValueError(value)
        return template

    return Rule(parse, f"a URL starting `http://` or `https://` holding `{PATIENT_PLACEHOLDER}` once")


def token() -> Rule:
    """A FHIR token `system|value`, both parts given."""

    def parse(value: str) -> str:
        system, bar, code = value.strip().partition("|")
        if not (bar and system.strip() and code.strip()):
            raise ValueError(value)
        return f"{system.strip()}|{code.strip()}"

    return Rule(parse, "an identifier `system|value`")


def references() -> Rule:
    """Comma-separated `name=Type/id` pairs (each name once), kept in order."""

    def parse(value: str) -> tuple[tuple[str, str], ...]:
        found: dict[str, str] = {}
        for item in (part.strip() for part in value.split(",") if part.strip()):
            name, _, target = (side.strip() for side in item.partition("="))
            if not name or name in found or not FHIR_REFERENCE.fullmatch(target):
                raise ValueError(value)
            found[name] = target
        return tuple(found.items())

    return Rule(parse, "comma-separated `name=Type/id` pairs, each name once")


def path() -> Rule:
    return Rule(lambda value: Path(value.strip()), "a file or folder path")


def setting(
    variable: str, default: Any, meaning: str, rule: Rule, *, shown: str | None = None, secret: bool = False
) -> Any:
    """Declare a field read from `variable`; `shown` is the default as the README states it."""
    metadata = {"variable": variable, "meaning": meaning, "rule": rule, "shown": shown, "secret": secret}
    return field(default=default, repr=not secret, metadata=metadata)


EMPTY = "(empty)"
HTTP = ("http", "https")
# The folder holding `service/`: a project checkout when it also holds Carepath's pyproject.toml.
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where the embedded defaults keep their files, whatever the current directory.

    In a project checkout (an editable install, `make run`) it is the checkout's `var/`, so every
    `carepath` command finds the database `make run` uses, wherever it is run from; an installed
    package keeps them in the user's data folder (XDG), never in a stray `./var`.
    """
    pyproject = _SOURCE_ROOT / "pyproject.toml"
    if pyproject.is_file() and 'name = "carepath"' in pyproject.read_text(encoding="utf-8"):
        return _SOURCE_ROOT / "var"
    data_home = env.get("XDG_DATA_HOME", "").strip()
    return (Path(data_home) if data_home else Path.home() / ".local" / "share") / "carepath"


@dataclass(frozen=True)
class Settings:
    """Every setting Carepath reads, resolved once from the environment."""

    data_dir: Path = setting(
        "CAREPATH_DATA_DIR",
        default_data_dir(os.environ),
        "Folder for the embedded SQLite database and broker files. Empty: `var/` of the project checkout "
        "Carepath runs from (where `make run` keeps it), wherever a command is run; an installed package uses "
        "`$XDG_DATA_HOME/carepath` (`~/.local/share/carepath`).",
        path(),
        shown="<project>/var",
    )
    database_url: str = setting(
        "DATABASE_URL",
        "",
        "SQLAlchemy URL of the database; PostgreSQL in production (`postgresql+psycopg://...`).",
        Rule(lambda value: value.strip() if "://" in value else _refuse(value), "an SQLAlchemy URL (`scheme://...`)"),
        shown="sqlite:///$CAREPATH_DATA_DIR/carepath.db",
    )
    redis_url: str | None = setting(
        "REDIS_URL",
        None,
        "Redis URL of the Celery broker. Empty: an embedded broker in a SQLite file "
        "(kombu's SQLAlchemy transport), still served to real worker processes.",
        url("redis", "rediss"),
    )
    host: str = setting("HOST", "127.0.0.1", "Address the API listens on.", text())
    port: int = setting("PORT", 8000, "Port the API listens on (`--port` overrides it).", whole(1, MAX_PORT))
    web_concurrency: int = setting("WEB_CONCURRENCY", 2, "gunicorn worker processes for the API.", whole(1, 64))
    web_threads: int = setting(
        "WEB_THREADS",
        4,
        "Threads per API process (gunicorn's threaded worker): a request waiting on the database or the broker "
        "does not hold its process. 1: gunicorn's sync worker.",
        whole(1, 256),
    )
    forwarded_allow_ips: str = setting(
        "FORWARDED_ALLOW_IPS",
        "127.0.0.1,::1",
        "Addresses or networks (comma-separated; `*` for any) of the proxy in front, whose `X-Forwarded-Proto` "
        "the API believes; docker-compose.yml trusts its internal network, where only the proxy reaches the API.",
        text(),
    )
    worker_concurrency: int = setting(
        "WORKER_CONCURRENCY", 2, "Celery worker processes per `carepath worker`.", whole(1, 64)
    )
    ehr_base_url: str | None = setting(
        "EHR_BASE_URL", None, "FHIR base URL of the EHR. Empty: decisions stay local.", url(*HTTP)
    )
    ehr_auth: str = setting(
        "EHR_AUTH",
        "bearer",
        "How to authenticate to the EHR: `none`, `bearer` or `smart` (SMART Backend Services).",
        choice("none", "bearer", "smart"),
    )
    ehr_token: str | None = setting("EHR_TOKEN", None, "Bearer token for the EHR (never logged).", text(), secret=True)
    ehr_client_id: str | None = setting(
        "EHR_CLIENT_ID", None, "`EHR_AUTH=smart`: the client id the EHR issued at registration.", text()
    )
    ehr_private_key_file: Path | None = setting(
        "EHR_PRIVATE_KEY_FILE",
        None,
        "`EHR_AUTH=smart`: PEM private key signing the client assertions; RSA signs RS384, P-384 EC "
        "signs ES384 (`carepath keys generate`).",
        path(),
    )
    ehr_key_id: str | None = setting(
        "EHR_KEY_ID",
        None,
        "`EHR_AUTH=smart`: the `kid` of that key in the registered JWKS.",
        text(),
        shown="(JWK thumbprint)",
    )
    ehr_scopes: str = setting(
        "EHR_SCOPES", DEFAULT_EHR_SCOPES, "`EHR_AUTH=smart`: the scopes requested with each token.", words()
    )
    ehr_token_url: str | None = setting(
        "EHR_TOKEN_URL",
        None,
        "`EHR_AUTH=smart`: token endpoint; empty: read from `$EHR_BASE_URL/.well-known/smart-configuration`.",
        url(*HTTP),
        shown="(discovered)",
    )
    ehr_connect_timeout: float = setting(
        "EHR_CONNECT_TIMEOUT", 3.05, "Seconds to wait for a connection to the EHR.", seconds()
    )
    ehr_read_timeout: float = setting("EHR_READ_TIMEOUT", 20.0, "Seconds to wait for an EHR answer.", seconds())
    device_identifier: str = setting(
        "DEVICE_IDENTIFIER",
        "https://carepath.dev/fhir/identifier/device|carepath",
        "Identifier (`system|value`) of the `Device` Carepath registers in the EHR (a conditional create at "
        "worker start and at `subscriptions register`) and names as the requester and author of what it writes.",
        token(),
    )
    device_name: str = setting(
        "DEVICE_NAME", "Carepath pathway engine", "Name of that `Device`, shown wherever the EHR shows it.", text()
    )
    coordinator_practitioners: tuple[tuple[str, str], ...] = setting(
        "COORDINATOR_PRACTITIONERS",
        (),
        "Which `Practitioner` in the EHR each API token name stands for (`name=Practitioner/<id>`, comma-separated): "
        "a Task a coordinator claims names it as owner. A JWT's `fhirUser` claim wins; anyone else is named by an "
        "identifier and display, never by a reference the EHR cannot resolve.",
        references(),
    )
    pathway_definition: Path | None = setting(
        "PATHWAY_DEFINITION",
        None,
        "Path of the pathway definition YAML to run; empty runs the shipped default.",
        path(),
        shown="(shipped pt-nonresponse)",
    )
    max_body_bytes: int = setting("MAX_BODY_BYTES", MEBIBYTE, "Largest request body accepted (larger: 413).", whole(1))
    sweep_interval_seconds: float = setting(
        "SWEEP_INTERVAL_SECONDS",
        30.0,
        "How often beat sweeps due checkpoints, unprocessed events and undelivered decisions, reads Task "
        "changes from the EHR and checks the subscriptions' status there.",
        seconds(),
    )
    stranded_after_seconds: float = setting(
        "STRANDED_AFTER_SECONDS",
        120.0,
        "How long an event may stay unprocessed, or a delivery unfinished, before beat re-queues it.",
        seconds(),
    )
    evaluation_batch_size: int = setting(
        "EVALUATION_BATCH_SIZE",
        100,
        "Most pending events a worker claims and evaluates in one transaction (each patient's together, "
        "in clinical-time order).",
        whole(1),
    )
    evaluation_lease_seconds: float = setting(
        "EVALUATION_LEASE_SECONDS",
        5.0,
        "How long a claimed batch is kept for its worker to start on it; once started, the worker holds it "
        "until its commit. A batch no worker holds after that (its worker died) is claimed again.",
        seconds(),
    )
    wake_signal_stale_seconds: float = setting(
        "WAKE_SIGNAL_STALE_SECONDS",
        10.0,
        "How long a wake-up sent to the workers may go untaken before intake sends another (its message may "
        "have died with the broker).",
        seconds(),
    )
    worker_heartbeat_seconds: float = setting(
        "WORKER_HEARTBEAT_SECONDS",
        10.0,
        "How often each worker records in the database that it is alive; /readyz and /metrics count a worker "
        "silent for three periods as gone.",
        seconds(),
    )
    notification_base_url: str | None = setting(
        "NOTIFICATION_BASE_URL",
        None,
        "Carepath's base URL as the EHR reaches it; `subscriptions register` points at `<it>/notifications`.",
        url(*HTTP),
    )
    ehr_chart_url: str | None = setting(
        "EHR_CHART_URL",
        None,
        "Link from a patient to their chart in the EHR: a URL with `{patient_id}` where the patient's id goes, "
        "e.g. `https://ehr.example/chart/{patient_id}`; empty: no link.",
        chart_url(),
    )
    alert_webhook_url: str | None = setting(
        "ALERT_WEBHOOK_URL",
        None,
        "Where a JSON alert is POSTed when the EHR does not take an urgent decision (dead-lettered); empty: no "
        "alert, the UI's banner only. May hold a secret: never logged.",
        url(*HTTP),
        secret=True,
    )
    secret_grace_seconds: float = setting(
        "SECRET_GRACE_SECONDS",
        300.0,
        "How long a subscription's previous secret is still accepted after its reactivation gave it a new one: "
        "notifications the EHR sent (or retries) with the old secret meanwhile are not refused. 0: refused at once.",
        seconds(zero_allowed=True),
    )
    heartbeat_grace_seconds: float = setting(
        "HEARTBEAT_GRACE_SECONDS",
        30.0,
        "Silence beyond a subscription's heartbeat period tolerated before /readyz and /metrics report it stale.",
        seconds(zero_allowed=True),
    )
    gap_grace_seconds: float = setting(
        "GAP_GRACE_SECONDS",
        10.0,
        "How long a missing subscription event may still arrive late before it is recovered from the EHR.",
        seconds(zero_allowed=True),
    )
    reconcile_patients_per_sweep: int = setting(
        "RECONCILE_PATIENTS_PER_SWEEP",
        20,
        "How many patients each sweep compares with the EHR (the facts Carepath read from a subscription against "
        "what the EHR still holds), those compared longest ago first: a deletion the EHR never notified is "
        "retracted within a sweep while there are no more such patients than this.",
        whole(1),
    )
    max_event_gap: int = setting(
        "MAX_EVENT_GAP",
        1000,
        "How far beyond the highest event number a subscription has reported a notification's number may "
        "jump; one further is not counted (the subscription's criteria are searched instead).",
        whole(1),
    )
    oidc_issuer: str | None = setting(
        "OIDC_ISSUER",
        None,
        "OpenID Connect issuer whose JWTs the API accepts besides its own tokens (keys from its discovery "
        "document). Empty: API tokens only.",
        url(*HTTP),
    )
    oidc_jwks_uri: str | None = setting(
        "OIDC_JWKS_URI",
        None,
        "Where the issuer's signing keys are read, for an issuer that publishes them on another host. Empty: "
        "the discovery document's `jwks_uri`, which must then be on the issuer's own scheme, host and port. "
        "Either way `https://`, or `http://` on a loopback host only.",
        url(*HTTP),
    )
    oidc_audience: str | None = setting("OIDC_AUDIENCE", None, "`aud` a JWT must carry; empty: not checked.", text())
    oidc_role_claim: str = setting(
        "OIDC_ROLE_CLAIM",
        "carepath_role",
        "JWT claim holding the caller's role: `ehr`, `coordinator` or `admin`.",
        text(),
    )
    token_cache_seconds: float = setting(
        "TOKEN_CACHE_SECONDS",
        5.0,
        "How long an API process trusts an API token it has verified before reading it again; a token revoked "
        "through another process is refused within this time (at once by the process that revoked it). 0: read "
        "on every request.",
        seconds(zero_allowed=True),
    )
    secret_key: str | None = setting(
        "SECRET_KEY",
        None,
        "Signs the web UI's session cookies and encrypts the OIDC sign-ins kept for them; every API process must "
        "share it. Empty: a random key per process on the embedded defaults (sign-ins end at restart; a warning "
        "is logged), and no web UI sign-in otherwise.",
        text(),
        shown="(generated per process)",
        secret=True,
    )
    # Not a variable: whether `secret_key` was invented for this process (the UI warns about it).
    secret_key_generated: bool = False
    session_idle_seconds: float = setting(
        "SESSION_IDLE_SECONDS",
        1800.0,
        "A web UI session left unused this long ends; the next page asks to sign in again.",
        seconds(),
    )
    session_max_seconds: float = setting(
        "SESSION_MAX_SECONDS",
        28800.0,
        "A web UI session ends this long after sign-in however busy it is (one working day).",
        seconds(),
    )
    log_level: str = setting("LOG_LEVEL", "INFO", "Log level.", level())
    log_format: str = setting(
        "LOG_FORMAT", "json", "`json` for machines, `console` for people.", choice("json", "console")
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment); a bad value raises SettingsError."""
        env = os.environ if environ is None else environ
        values = {spec.name: _read(spec, env.get(spec.metadata["variable"])) for spec in declared()}
        if not env.get("CAREPATH_DATA_DIR", "").strip():
            values["data_dir"] = default_data_dir(env)
        data_dir: Path = values["data_dir"]
        if not values["database_url"]:
            values["database_url"] = f"sqlite:///{data_dir.resolve() / 'carepath.db'}"
        # Only the embedded defaults may invent a key: production runs several processes that must share one.
        generate_key = values["secret_key"] is None and values["redis_url"] is None
        if generate_key:
            values["secret_key"] = _process_secret_key()
        return cls(**values, secret_key_generated=generate_key)

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


def declared() -> tuple[dataclasses.Field[Any], ...]:
    """The fields of `Settings` that an environment variable sets, in the README's order."""
    return tuple(spec for spec in dataclasses.fields(Settings) if "variable" in spec.metadata)


def variable_names() -> frozenset[str]:
    return frozenset(spec.metadata["variable"] for spec in declared())


def _read(spec: dataclasses.Field[Any], raw: str | None) -> Any:
    if raw is None or raw.strip() == "":
        return spec.default
    rule: Rule = spec.metadata["rule"]
    try:
        return rule.parse(raw)
    except ValueError:
        name = spec.metadata["variable"]
        given = "its value" if spec.metadata["secret"] else repr(raw[:80])
        raise SettingsError(f"{name}: {given} is not valid; it takes {rule.accepts}.") from None


def _refuse(value: str) -> str:
    raise ValueError(value)


def _shown_default(spec: dataclasses.Field[Any]) -> str:
    if spec.metadata["shown"] is not None:
        return str(spec.metadata["shown"])
    if spec.default is None or spec.default == ():
        return EMPTY
    if isinstance(spec.default, float) and spec.default.is_integer():
        return str(int(spec.default))
    return str(spec.default)


@functools.cache
def _process_secret_key() -> str:
    """One random key per process, made once: gunicorn forks its workers after reading settings, so they share it."""
    return secrets.token_urlsafe(32)


def settings_table_markdown() -> str:
    """The README's settings table, from the same declarations the code reads."""
    rows = ["| Name | Default | Meaning |", "|---|---|---|"]
    rows += [
        f"| `{spec.metadata['variable']}` | `{_shown_default(spec)}` | {spec.metadata['meaning']} |"
        for spec in declared()
    ]
    return "\n".join(rows)


MASKED = "(set, hidden)"
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s]*(?P<tail>@)", re.IGNORECASE)


def shown_value(settings: Settings, spec: dataclasses.Field[Any]) -> str:
    """A setting's value as `carepath settings` prints it: secrets hidden, a URL's password masked."""
    value = getattr(settings, spec.name)
    if value is None or value == () or value == "":
        return EMPTY
    if spec.metadata["secret"]:
        return MASKED
    if isinstance(value, tuple):
        return ", ".join("=".join(pair) for pair in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _URL_PASSWORD.sub(r"\g<head>***\g<tail>", str(value))


def settings_table(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The settings in effect as a plain-text table: each variable, whether the environment set it, its value."""
    env = os.environ if environ is None else environ
    rows = [("Variable", "From", "Value")]
    for spec in declared():
        variable = spec.metadata["variable"]
        source = "environment" if env.get(variable, "").strip() else "default"
        rows.append((variable, source, shown_value(settings, spec)))
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [f"{name:<{widths[0]}}  {source:<{widths[1]}}  {value}" for name, source, value in rows]
    lines.insert(1, f"{'-' * widths[0]}  {'-' * widths[1]}  -----")
    return "\n".join(lines)
