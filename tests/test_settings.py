"""ApiSettings and ClientConfig: environment reading, validation, and the key kept out of reprs."""

import pickle

import pytest
from pydantic import ValidationError

from extract.client import ClientConfig, ConversationsClient
from extract.settings import ApiSettings

KEY = "sk-test-0123456789abcdef"


def test_settings_default_to_the_public_api_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    monkeypatch.delenv("MISTRAL_BASE_URL", raising=False)
    settings = ApiSettings()
    assert settings.base_url == "https://api.mistral.ai"
    assert settings.api_key is None
    assert settings.client_config().api_key is None


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    monkeypatch.setenv("MISTRAL_BASE_URL", "http://127.0.0.1:9999/")
    settings = ApiSettings()
    assert settings.base_url == "http://127.0.0.1:9999"
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == KEY
    config = settings.client_config(concurrency=4, rps=2.5)
    assert (config.base_url, config.api_key, config.concurrency, config.rps) == (
        "http://127.0.0.1:9999",
        KEY,
        4,
        2.5,
    )


def test_a_blank_key_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "  ")
    assert ApiSettings().api_key is None


def test_a_base_url_without_scheme_is_rejected_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_BASE_URL", "api.mistral.ai")
    with pytest.raises(ValidationError, match="MISTRAL_BASE_URL must start with http"):
        ApiSettings()


def test_the_key_is_hidden_in_settings_config_and_client_reprs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    settings = ApiSettings()
    config = settings.client_config()
    client = ConversationsClient(config)
    for shown in (repr(settings), str(settings), repr(config), str(config), repr(client)):
        assert KEY not in shown
    assert "api_key='**********'" in repr(config)
    assert "concurrency=16" in repr(config)
    assert KEY not in repr(pickle.loads(pickle.dumps(config)))


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"base_url": "ftp://x"}, "base_url must start with http"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"rps": 0}, "rps must be positive"),
        ({"max_retries": -1}, "max_retries must be 0 or more"),
        ({"read_timeout": 0}, "read_timeout must be positive"),
        ({"backoff_initial": -1}, "backoff_initial must be 0 or more"),
    ],
)
def test_client_config_rejects_bad_values(knobs: dict, message: str) -> None:
    arguments = {"base_url": "http://127.0.0.1:1", **knobs}
    with pytest.raises(ValueError, match=message):
        ClientConfig(**arguments)


def test_client_config_defaults_match_the_contract() -> None:
    config = ClientConfig(base_url="http://127.0.0.1:1")
    assert (
        config.api_key,
        config.concurrency,
        config.rps,
        config.connect_timeout,
        config.read_timeout,
        config.max_retries,
    ) == (None, 16, None, 10.0, 120.0, 6)
