"""Which URLs are the EHR's: the parser confusions that have sent credentials elsewhere, one row each."""

from __future__ import annotations

import pytest

from service.ehr.urls import EhrBase, ForeignUrl, parse

BASE = "https://ehr.example.test/fhir"
LOOPBACK_BASE = "http://127.0.0.1:18203/fhir"
IPV6_BASE = "http://[::1]:18203/fhir"


@pytest.mark.parametrize(
    ("base", "url", "key"),
    [
        (BASE, "Observation/o1", ("Observation", "o1")),
        (BASE, "Observation/o1/_history/3", ("Observation", "o1")),
        (BASE, f"{BASE}/Observation/o1", ("Observation", "o1")),
        (BASE, "https://ehr.example.test:443/fhir/Observation/o1", ("Observation", "o1")),  # default port spelt out
        (BASE, "HTTPS://EHR.Example.TEST/fhir/Observation/o1", ("Observation", "o1")),  # scheme and host case
        (BASE, "https://ehr.example.test./fhir/Observation/o1", ("Observation", "o1")),  # trailing dot
        (BASE, "https://ehr.example.test/fhir/Observation/o1/", ("Observation", "o1")),
        (BASE, "https://ｅｈｒ.example.test/fhir/Observation/o1", ("Observation", "o1")),  # full-width: same host
        ("http://ehr.example.test:80/fhir", "http://ehr.example.test/fhir/Observation/o1", ("Observation", "o1")),
        (IPV6_BASE, "http://[0:0:0:0:0:0:0:1]:18203/fhir/Observation/o1", ("Observation", "o1")),
        (LOOPBACK_BASE, "http://127.0.0.1:18203/fhir/Observation/o1", ("Observation", "o1")),
    ],
)
def test_references_on_the_ehr_are_read_as_type_and_id_after_normalisation(
    base: str, url: str, key: tuple[str, str]
) -> None:
    assert EhrBase(base).resource_key(url) == key


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("Observation/o1", ("Observation", "o1", None)),
        ("Observation/o1/_history/3", ("Observation", "o1", "3")),
        (f"{BASE}/Observation/o1/_history/v-2.a", ("Observation", "o1", "v-2.a")),
    ],
)
def test_a_reference_naming_a_version_keeps_it(url: str, key: tuple[str, str, str | None]) -> None:
    assert EhrBase(BASE).versioned_key(url) == key


@pytest.mark.parametrize(
    "url", ["Observation/o1/_history/..", "Observation/o1/_history/a$b", f"Observation/o1/_history/{'9' * 65}"]
)
def test_a_version_that_is_not_a_fhir_id_is_refused(url: str) -> None:
    with pytest.raises(ForeignUrl):
        EhrBase(BASE).versioned_key(url)


@pytest.mark.parametrize(
    ("base", "url"),
    [
        # the reproducer: urllib reads the host after the backslash, requests connects to the one before
        (LOOPBACK_BASE, "http://127.0.0.1:18210\\@127.0.0.1:18203/fhir/Observation/x"),
        (BASE, "https://evil.example\\ehr.example.test/fhir/Observation/o1"),
        (BASE, "https:\\\\ehr.example.test/fhir/Observation/o1"),
        (BASE, "https://ehr.example.test\\@evil.example/fhir/Observation/o1"),
        # userinfo, in every spelling
        (BASE, "https://ehr.example.test@evil.example/fhir/Observation/o1"),
        (BASE, "https://evil.example@ehr.example.test/fhir/Observation/o1"),
        (BASE, "https://user:pw@ehr.example.test/fhir/Observation/o1"),
        (BASE, "https://evil.example%40ehr.example.test/fhir/Observation/o1"),
        # percent-encoding in the authority
        (BASE, "https://evil.example%2F@ehr.example.test/fhir/Observation/o1"),
        (BASE, "https://evil.example%2fehr.example.test/fhir/Observation/o1"),
        (BASE, "https://evil.example%5C@ehr.example.test/fhir/Observation/o1"),
        (BASE, "https://ehr.example.test%2F.evil.example/fhir/Observation/o1"),
        # encoded separators in the path
        (BASE, "https://ehr.example.test/fhir/Observation%2Fo1"),
        (BASE, "https://ehr.example.test/fhir/Observation/..%2F..%2Fadmin"),
        (BASE, "https://ehr.example.test/fhir/Observation/../../admin/o1"),
        # IPv6 literals that are not the base's address
        (IPV6_BASE, "http://[::ffff:127.0.0.1]:18203/fhir/Observation/o1"),
        (LOOPBACK_BASE, "http://[::1]:18203/fhir/Observation/o1"),
        (IPV6_BASE, "http://[::1%25eth0]:18203/fhir/Observation/o1"),
        (IPV6_BASE, "http://[::1:18203/fhir/Observation/o1"),
        # other ports, schemes and paths
        (BASE, "http://ehr.example.test/fhir/Observation/o1"),
        (BASE, "https://ehr.example.test:8443/fhir/Observation/o1"),
        (BASE, "https://ehr.example.test:99999/fhir/Observation/o1"),
        (BASE, "https://ehr.example.test/fhirx/Observation/o1"),
        (BASE, "https://ehr.example.test/other/Observation/o1"),
        (BASE, "ftp://ehr.example.test/fhir/Observation/o1"),
        (BASE, "//evil.example/fhir/Observation/o1"),
        (BASE, "/Observation/o1"),
        (BASE, "evil.example/fhir/Observation/o1"),
        # numeric hosts in shorthand, which resolvers read as another address
        (LOOPBACK_BASE, "http://127.1:18203/fhir/Observation/o1"),
        (LOOPBACK_BASE, "http://2130706433:18203/fhir/Observation/o1"),
        (LOOPBACK_BASE, "http://0x7f.0.0.1:18203/fhir/Observation/o1"),
        # unicode host tricks: look-alike letters, separators that normalise to '/' or '@'
        (BASE, "https://ehr.exаmple.test/fhir/Observation/o1"),  # Cyrillic 'а'
        (BASE, "https://evil.example\uff0f@ehr.example.test/fhir/Observation/o1"),
        (BASE, "https://evil.example\uff20ehr.example.test/fhir/Observation/o1"),
        (BASE, "https://ehr.example.test\u2044evil/fhir/Observation/o1"),
        (BASE, "https://ehr.example.test/fhir/Observation/o\u0131"),
        # whitespace and control characters
        (BASE, "https://ehr.example.test /fhir/Observation/o1"),
        (BASE, "https://ehr.example.test/fhir/Observation/o1\r\nHost: evil"),
        (BASE, "https://ehr.example.test\t.evil.example/fhir/Observation/o1"),
    ],
)
def test_urls_any_parser_could_read_as_another_server_are_refused(base: str, url: str) -> None:
    with pytest.raises(ForeignUrl):
        EhrBase(base).resource_key(url)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://EHR.example.test./x", ("https", "ehr.example.test", 443)),
        ("http://[0::1]:8080/x", ("http", "::1", 8080)),
        ("http://bücher.example/x", ("http", "xn--bcher-kva.example", 80)),
        ("http://ehr_1:8080/fhir", ("http", "ehr_1", 8080)),
    ],
)
def test_a_parsed_origin_is_normalised_to_one_spelling(url: str, origin: tuple[str, str, int]) -> None:
    parsed = parse(url)
    assert (parsed.origin.scheme, parsed.origin.host, parsed.origin.port) == origin


def test_a_next_link_is_rebuilt_on_the_configured_base_with_its_query() -> None:
    base = EhrBase(BASE)
    assert base.rebuilt("https://EHR.example.test:443/fhir/Task?_page=2&x=a%2Cb") == f"{BASE}/Task?_page=2&x=a%2Cb"
    assert base.rebuilt(f"{BASE}?_getpages=abc") == f"{BASE}?_getpages=abc"
    with pytest.raises(ForeignUrl):
        base.rebuilt("https://ehr.example.test@evil.example/fhir/Task?_page=2")


@pytest.mark.parametrize("reference", ["Patient/p1", "urn:uuid:0b6e2a2a-7a4c-4a39-9d9e-0b8f1e2d3c4b", "#contained"])
def test_relative_and_urn_references_pass_the_origin_check(reference: str) -> None:
    EhrBase(BASE).check_reference(reference)


def test_a_base_url_that_is_itself_ambiguous_is_refused_at_start_up() -> None:
    with pytest.raises(ForeignUrl):
        EhrBase("http://127.0.0.1:18210\\@127.0.0.1:18203/fhir")
