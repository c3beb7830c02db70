"""PostgreSQL connection URLs: recognising them, and showing them without their password.

A URL names the database (``postgresql://USER@HOST:PORT/DATABASE``); the password
may be in the URL, in ``PGPASSWORD`` or in ``~/.pgpass``: libpq (through psycopg)
reads all three, so segwise never reads or stores a password itself. Every message,
log line and record shows the URL through `describe_postgres_url`, which drops the
password (and any other secret connection parameter).
"""

from __future__ import annotations

import re
from typing import Any

from segwise.errors import InputError

__all__ = ["is_postgres_url", "normalize_postgres_url", "describe_postgres_url", "mask_secrets", "psycopg_module"]

# postgresql://, postgres:// and SQLAlchemy's postgresql+DRIVER:// (the driver part is dropped:
# segwise connects with psycopg); a path argument turns "//" into "/" (pathlib collapses it).
_SCHEME = re.compile(r"^(postgres(?:ql)?)(\+[a-z0-9_]+)?:/(/?)", re.IGNORECASE)
#: Connection parameters never shown (libpq keywords holding secrets).
_SECRET_KEYS = ("password", "sslpassword")


def psycopg_module():
    """psycopg, or an ImportError naming the extra to install."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ImportError("PostgreSQL sources need psycopg: pip install 'segwise[postgres]'") from None
    return psycopg


def is_postgres_url(source: Any) -> bool:
    """Whether ``source`` is a ``postgresql://`` (or ``postgres://``) URL, also after a path round trip."""
    if not isinstance(source, str):
        source = str(source) if type(source).__name__.endswith("Path") else None
        if source is None:
            return False
    return bool(_SCHEME.match(source.strip()))


def normalize_postgres_url(source: Any) -> str:
    """The URL as libpq reads it (a SQLAlchemy driver name dropped, a ``//`` lost to a path type restored)."""
    text = str(source).strip()
    return _SCHEME.sub(lambda m: m.group(1) + "://", text, count=1)


def describe_postgres_url(url: str, what: str = "the source") -> str:
    """``postgresql://USER@HOST:PORT/DATABASE``: the URL without its password, for messages and records.

    Raises
    ------
    InputError
        When ``url`` is not a URL libpq can read (the message never repeats it whole:
        it may hold a password).
    """
    psycopg = psycopg_module()
    try:
        parts = psycopg.conninfo.conninfo_to_dict(normalize_postgres_url(url))
    except psycopg.ProgrammingError as exc:
        reason = mask_secrets(str(exc).strip().splitlines()[0], url)
        raise InputError(
            f"{what}: not a valid PostgreSQL URL ({reason}); write postgresql://USER@HOST:PORT/DATABASE "
            "(the password from PGPASSWORD or ~/.pgpass, or postgresql://USER:PASSWORD@HOST/DATABASE)"
        ) from None
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', 'localhost')}{port}/{parts.get('dbname', '')}"


def _secrets(url: str) -> list[str]:
    """The secret values in ``url`` (the password, however it is written)."""
    found: list[str] = []
    match = re.match(r"^[a-z]+:/+[^/@]*?:([^/@]*)@", normalize_postgres_url(url), re.IGNORECASE)
    if match and match.group(1):
        found.append(match.group(1))
    try:
        parts = psycopg_module().conninfo.conninfo_to_dict(normalize_postgres_url(url))
    except Exception:  # an unreadable URL: the regular expression above is all there is
        parts = {}
    found += [str(parts[k]) for k in _SECRET_KEYS if parts.get(k)]
    # Percent-encoded passwords appear decoded in driver messages and encoded in the URL.
    from urllib.parse import quote, unquote

    found += [v for s in list(found) for v in (unquote(s), quote(s, safe=""))]
    return sorted({s for s in found if s}, key=len, reverse=True)


def mask_secrets(text: str, url: str) -> str:
    """``text`` with every secret of ``url`` replaced by ``***`` (for driver messages)."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text
