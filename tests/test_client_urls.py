"""redacted_url: base URLs shown or stored without the credentials in them."""

import pytest

from extract.urls import redacted_url, url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.mistral.ai", "https://api.mistral.ai"),
        ("https://user:pa55@gw.example:8443/mistral/", "https://gw.example:8443/mistral/"),
        ("https://TOKEN@gw.example/x", "https://gw.example/x"),
        ("https://gw.example/?token=abc&api_key=def&sig=ghi", "https://gw.example/"),
        ("http://[::1]:8000/?key=k#frag", "http://[::1]:8000/"),
    ],
)
def test_redacted_url_drops_userinfo_and_the_whole_query(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_url_secrets_lists_what_a_message_must_not_show() -> None:
    secrets = url_secrets("https://me:p%40ss@gw.example/?token=tok-1234&page=1")
    assert {"me:p%40ss", "p%40ss", "p@ss", "tok-1234"} <= set(secrets)
    assert "1" not in secrets
