"""Settings of the assignment service, and where its bearer token comes from."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

from segwise.errors import InputError

__all__ = ["Settings", "TOKEN_ENV", "read_token_file", "resolve_token"]

#: Environment variable holding the bearer token (``--token-file`` takes precedence).
TOKEN_ENV = "SEGWISE_API_TOKEN"
#: Environment variables through which ``segwise serve --workers N`` configures its workers.
MODEL_ENV = "SEGWISE_SERVE_MODEL"
SETTINGS_ENV = "SEGWISE_SERVE_SETTINGS"
TOKEN_FILE_ENV = "SEGWISE_SERVE_TOKEN_FILE"


@dataclass(frozen=True)
class Settings:
    """How the service runs.

    Parameters
    ----------
    token : str, optional
        Bearer token every ``/v1`` request must carry (``Authorization: Bearer
        TOKEN``); None serves without authentication.
    max_body_bytes : int
        Larger request bodies get 413 without being read.
    max_batch_size : int
        Most customers in one ``/v1/assign/batch`` request.
    max_transactions : int
        Most transaction lines in one ``/v1/assign`` request.
    supervisor_pid : int, optional
        In each worker of ``segwise serve --workers N`` (N > 1), the process id of
        that ``segwise serve``: a reload then asks it (SIGHUP) to replace every
        worker, so all of them serve the new model.
    """

    token: str | None = field(default=None, repr=False)
    max_body_bytes: int = 32 * 1024 * 1024
    max_batch_size: int = 10_000
    max_transactions: int = 10_000
    supervisor_pid: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_batch_size", "max_transactions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"The {name!r} parameter of Settings must be an int in the range [1, inf). Got {value!r} instead.")
        if self.token is not None and not self.token.strip():
            raise InputError("the bearer token is empty; give a non-empty token or none")

    @property
    def supervised(self) -> bool:
        """Whether this process is a worker of the ``segwise serve`` that set `supervisor_pid`."""
        return self.supervisor_pid is not None and os.getppid() == self.supervisor_pid

    def to_environment(self) -> str:
        """Everything but the token, as JSON (the token travels separately)."""
        data = asdict(self)
        data.pop("token")
        return json.dumps(data)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "Settings":
        """Settings of a worker started by ``segwise serve --workers N``."""
        data = json.loads(environ.get(SETTINGS_ENV, "{}"))
        token_file = environ.get(TOKEN_FILE_ENV)
        return cls(token=resolve_token(Path(token_file) if token_file else None, environ), **data)


def read_token_file(path: Path) -> str:
    """The token in a file (surrounding whitespace and a final newline are ignored)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InputError(f"--token-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--token-file {path}: cannot be read ({type(exc).__name__})") from None
    if not token:
        raise InputError(f"--token-file {path}: the file is empty; put the bearer token in it")
    return _checked(token, f"--token-file {path}")


def _checked(token: str, source: str) -> str:
    # HTTP headers carry ASCII; a token with spaces could not be told from the scheme.
    if not (token.isascii() and token.isprintable()) or any(ch.isspace() for ch in token):
        raise InputError(f"{source}: the token must be printable ASCII without spaces (e.g. from `openssl rand -hex 32`)")
    return token


def resolve_token(token_file: Path | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The bearer token: from ``token_file`` if given, else ``SEGWISE_API_TOKEN``, else None."""
    if token_file is not None:
        return read_token_file(token_file)
    token = environ.get(TOKEN_ENV)
    if token is None:
        return None
    token = token.strip()
    if not token:
        raise InputError(f"{TOKEN_ENV} is set but empty; unset it or give a token")
    return _checked(token, TOKEN_ENV)
