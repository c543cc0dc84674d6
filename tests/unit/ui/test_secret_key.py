"""SECRET_KEY: set in production, invented per process only on the embedded defaults."""

from __future__ import annotations

from service.settings import Settings


def test_the_embedded_defaults_invent_one_key_per_process_and_say_so() -> None:
    first, second = Settings.from_env({}), Settings.from_env({})
    assert first.secret_key and first.secret_key == second.secret_key
    assert first.secret_key_generated


def test_production_without_a_secret_key_gets_none_so_the_ui_refuses_sign_in() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert settings.secret_key is None and not settings.secret_key_generated


def test_a_configured_secret_key_is_used_as_given_and_never_shown() -> None:
    settings = Settings.from_env({"SECRET_KEY": "k" * 40, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert settings.secret_key == "k" * 40 and not settings.secret_key_generated
    assert "k" * 40 not in repr(settings)
