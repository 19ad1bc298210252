"""Where the API is and which key to use, read from MISTRAL_BASE_URL and MISTRAL_API_KEY."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from extract.client import ClientConfig
from extract.urls import redacted_url


class ApiSettings(BaseSettings):
    """API location and key from the environment; the key stays a SecretStr until it is sent."""

    model_config = SettingsConfigDict(env_prefix="MISTRAL_", extra="ignore")

    base_url: str = "https://api.mistral.ai"
    api_key: SecretStr | None = None

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_no_key(cls, value: Any) -> Any:
        """An exported-but-empty MISTRAL_API_KEY means no key, not an empty bearer token."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        """Fail at start-up on a base URL the client could never reach; keep no credentials.

        The client sends requests to the URL without its userinfo and query (a bearer key is the
        API's only credential), so dropping them here keeps them out of every flow parameter,
        stored row and message downstream.
        """
        if not value.startswith(("http://", "https://")):
            shown = redacted_url(value) if "://" in value else "a URL without a scheme"
            raise ValueError(f"MISTRAL_BASE_URL must start with http:// or https://, got {shown!r}")
        return redacted_url(value).rstrip("/")

    def client_config(self, **limits: Any) -> ClientConfig:
        """A ClientConfig for these settings; ``limits`` override concurrency, rps, timeouts..."""
        key = None if self.api_key is None else self.api_key.get_secret_value()
        return ClientConfig(base_url=self.base_url, api_key=key, **limits)
