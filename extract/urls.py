"""Base URLs as they may be shown or stored: without the credentials a user put in them."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

_MIN_SECRET = 4


def redacted_url(url: str) -> str:
    """``url`` without its userinfo (``user:pass@``) and its whole query, for logs and storage.

    Dropping the whole query is the robust rule: a token can hide in any parameter name.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def url_secrets(url: str) -> list[str]:
    """The credentials in ``url`` (user, password, query values), as written and decoded."""
    parts = urlsplit(url)
    found = [parts.username, parts.password]
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    raw = parts.netloc.rpartition("@")[0]
    found += [raw, *raw.split(":", 1)] if raw else []
    found += [unquote(value) for value in list(found) if value]
    # Shorter values ("1", "us") would blank out ordinary words of a message.
    return [value for value in dict.fromkeys(found) if value and len(value) >= _MIN_SECRET]
