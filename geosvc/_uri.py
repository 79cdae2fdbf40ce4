"""Database URIs given where a file path is accepted (no heavy imports: the CLI uses it)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["is_db_uri", "mask_uri"]

_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def is_db_uri(value: object) -> bool:
    """True when ``value`` is a PostgreSQL URI (``postgresql://…``)."""
    return isinstance(value, str) and "://" in value \
        and value.split("://", 1)[0].lower() in _SCHEMES


def mask_uri(uri: str) -> str:
    """The URI with its password replaced by ``***`` (for messages and summaries)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}"))
