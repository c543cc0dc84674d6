"""An API process trusts a verified token for TOKEN_CACHE_SECONDS, forgets one it revokes, and stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.access import token_cache
from service.access.identity import TOKEN, Identity
from service.access.token_cache import VerifiedTokens, revocation_delay
from service.settings import Settings

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NURSE = Identity(name="ward-3", role="coordinator", kind=TOKEN)


def test_an_entry_is_trusted_until_its_lifetime_ends() -> None:
    cache = VerifiedTokens(timedelta(seconds=5))
    cache.keep("hash-a", 7, NURSE, NOW)
    assert cache.get("hash-a", NOW + timedelta(seconds=4.9)) == NURSE
    assert cache.get("hash-a", NOW + timedelta(seconds=5)) is None
    assert cache.get("hash-a", NOW) is None  # an expired entry is dropped, not kept for later


def test_forgetting_a_token_id_drops_every_entry_for_it_and_no_other() -> None:
    cache = VerifiedTokens(timedelta(seconds=5))
    cache.keep("hash-a", 7, NURSE, NOW)
    cache.keep("hash-b", 8, NURSE, NOW)
    cache.forget(7)
    assert cache.get("hash-a", NOW) is None
    assert cache.get("hash-b", NOW) == NURSE


def test_a_zero_lifetime_keeps_nothing() -> None:
    cache = VerifiedTokens(timedelta(0))
    cache.keep("hash-a", 7, NURSE, NOW)
    assert cache.get("hash-a", NOW) is None


def test_the_cache_never_grows_past_its_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(token_cache, "MAX_ENTRIES", 3)
    cache = VerifiedTokens(timedelta(seconds=5))
    for number in range(10):
        cache.keep(f"hash-{number}", number, NURSE, NOW)
        assert len(cache._entries) <= 3
    assert cache.get("hash-9", NOW) == NURSE


def test_the_revocation_message_states_the_delay_the_settings_give() -> None:
    assert "within 5 seconds" in revocation_delay(Settings(token_cache_seconds=5))
    assert revocation_delay(Settings(token_cache_seconds=0)) == "It stops working at once."
