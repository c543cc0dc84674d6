"""Which URLs belong to the EHR: one strict parser and one comparison, checked before any call.

A URL from outside (a notification's focus, a Bundle's `fullUrl`, a search's `next` link, a
discovered token endpoint) never chooses the host Carepath connects to. It is parsed here once,
refused when parsers could disagree about it (backslashes, userinfo, percent-encoded authority,
non-ASCII outside the host, numeric hosts in shorthand), and compared with the configured EHR
base by scheme, host and port after normalisation. What is sent is then rebuilt from the
configured base plus a checked path, so the host in the request is always the configured one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 id datatype
# `Type/id`, optionally `/_history/vid`: what a relative reference may be, and no more.
RELATIVE_REFERENCE = re.compile(
    r"(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<vid>[A-Za-z0-9\-.]{1,64}))?"
)
PATH_SEGMENT = re.compile(r"[A-Za-z0-9\-._$]{1,64}")  # `Observation`, `_search`, `$everything`
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 2048
# Characters that make parsers disagree about where the authority ends, or that hide bytes.
AMBIGUOUS = re.compile(r"[\\\s\x00-\x1f\x7f]")
LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")  # `_`: container hostnames
NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")


class ForeignUrl(ValueError):
    """A URL refused: malformed, ambiguous, or not on the EHR's scheme, host and port."""


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port after normalisation: equal origins reach the same server."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class ParsedUrl:
    """An absolute http(s) URL that every standard parser reads the same way."""

    origin: Origin
    path: str
    query: str

    @property
    def url(self) -> str:
        """The URL rebuilt from its checked parts (never the text as sent)."""
        host = f"[{self.origin.host}]" if ":" in self.origin.host else self.origin.host
        default = DEFAULT_PORTS[self.origin.scheme] == self.origin.port
        authority = host if default else f"{host}:{self.origin.port}"
        return f"{self.origin.scheme}://{authority}{self.path}" + (f"?{self.query}" if self.query else "")


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (a normalised host from `parse`): this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_absolute(reference: str) -> bool:
    """True for text with a scheme or an authority (`x:...`, `//host`): a URL, not a relative reference."""
    return reference.startswith("//") or re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", reference) is not None


def parse(url: str) -> ParsedUrl:
    """Parse an absolute http(s) URL strictly; raise ForeignUrl when it is in any way ambiguous."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise ForeignUrl("not a URL, or longer than a URL may be")
    if AMBIGUOUS.search(url):
        raise ForeignUrl("a URL may not hold backslashes, spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ForeignUrl(f"unreadable URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ForeignUrl("only http and https URLs are followed")
    if "@" in parts.netloc or "%" in parts.netloc:
        raise ForeignUrl("a URL's authority may not hold userinfo or percent-encoding")
    if not (parts.path + parts.query).isascii():
        raise ForeignUrl("a URL's path and query must be ASCII (percent-encoded)")
    host = _host(parts.netloc, parts.hostname)
    return ParsedUrl(Origin(scheme, host, port or DEFAULT_PORTS[scheme]), parts.path, parts.query)


def _host(netloc: str, hostname: str | None) -> str:
    """The host in one canonical spelling: IPv6 compressed, IPv4 dotted, names IDNA A-labels."""
    if not hostname:
        raise ForeignUrl("a URL needs a host")
    if netloc.startswith("["):
        try:
            return ipaddress.IPv6Address(hostname).compressed
        except ValueError:
            raise ForeignUrl("not an IPv6 address between the brackets") from None
    name = hostname[:-1] if hostname.endswith(".") else hostname  # `ehr.example.` is `ehr.example`
    try:
        # UTS 46 maps full-width and other look-alike forms the way resolvers do before comparing.
        name = idna.encode(name, uts46=True).decode("ascii") if not name.isascii() else name.lower()
    except idna.IDNAError:
        raise ForeignUrl("the host is not a valid domain name") from None
    labels = name.split(".")
    if NUMERIC_LABEL.fullmatch(labels[-1]):
        # Resolvers read `127.1`, `0x7f.1` and `2130706433` as IPv4; only the dotted quad is accepted.
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise ForeignUrl("a numeric host must be a dotted-quad IPv4 address") from None
    if not all(LABEL.fullmatch(label) for label in labels):
        raise ForeignUrl("the host is not a valid domain name")
    return name


class EhrBase:
    """The configured FHIR base URL, and the test every outside URL must pass to be called."""

    def __init__(self, base_url: str) -> None:
        parsed = parse(base_url.rstrip("/"))
        self.origin = parsed.origin
        self.url = parsed.url.rstrip("/")
        self.path = parsed.path.rstrip("/")

    def __repr__(self) -> str:
        return f"EhrBase({self.url!r})"

    def owns_origin(self, url: str) -> ParsedUrl:
        """`url` parsed, if it is on the EHR's scheme, host and port; else ForeignUrl."""
        parsed = parse(url)
        if parsed.origin != self.origin:
            # The EHR's own address is left out: this reason can reach whoever sent the URL.
            raise ForeignUrl("not on the EHR's scheme, host and port")
        return parsed

    def path_of(self, url: str) -> str:
        """The checked path of `url` below the base (`Observation`, `Observation/1`), or '' for the base."""
        parsed = self.owns_origin(url)
        path = parsed.path.rstrip("/")
        if path == self.path:
            return ""
        if not path.startswith(self.path + "/"):
            raise ForeignUrl("not below the EHR's base path")
        rest = path[len(self.path) + 1 :]
        if not all(PATH_SEGMENT.fullmatch(s) and s not in (".", "..") for s in rest.split("/")):
            raise ForeignUrl("a path segment below the EHR's base is not a FHIR name or id")
        return rest

    def rebuilt(self, url: str) -> str:
        """The EHR's own URL for `url` (a `next` link): configured base, checked path, its query."""
        path, query = self.path_of(url), self.owns_origin(url).query
        return self.url + (f"/{path}" if path else "") + (f"?{query}" if query else "")

    def resource_key(self, reference: str) -> tuple[str, str]:
        """`(type, id)` of a relative reference, or of an absolute one on this EHR; else ForeignUrl."""
        resource_type, id, _ = self.versioned_key(reference)
        return resource_type, id

    def versioned_key(self, reference: str) -> tuple[str, str, str | None]:
        """`(type, id, version)` of a reference as `resource_key` reads it; version None without `/_history/`."""
        relative = self.path_of(reference) if is_absolute(reference) else reference
        match = RELATIVE_REFERENCE.fullmatch(relative)
        if match is None or any(part in (".", "..") for part in (match["id"], match["vid"])):
            raise ForeignUrl("not a reference to a FHIR resource")
        return match["type"], match["id"], match["vid"]

    def check_reference(self, reference: str) -> None:
        """Refuse an absolute URL that is not on this EHR; `urn:` and relative references pass."""
        if reference.lower().startswith("urn:") or not is_absolute(reference):
            return
        self.path_of(reference)
