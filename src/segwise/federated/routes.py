"""What each silo endpoint does, apart from HTTP: the routes and `dispatch`.

The FastAPI app (`segwise.federated.app`) and the in-process `LocalSilo`
(`segwise.federated.transport`) both answer a request by calling `dispatch` with the
same JSON bytes, so a local federation runs exactly the code a remote one does,
without importing the web stack.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from segwise.errors import InputError, SegwiseError
from segwise.federated import protocol
from segwise.federated.silo import Silo

__all__ = ["ROUTES", "BadRequest", "dispatch"]


def _close(silo: Silo, body: dict[str, Any]) -> dict[str, Any]:
    return silo.close(str(body.get("session", "")))


#: Path -> (request model or None, handler(silo, parsed body)).
ROUTES: dict[str, tuple[type | None, Callable[[Silo, Any], dict[str, Any]]]] = {
    "/session": (protocol.SessionRequest, Silo.open_session),
    "/features": (protocol.FeaturesRequest, Silo.features),
    "/rounds/prepare": (protocol.RoundRequest, Silo.prepare),
    "/rounds/transformed": (protocol.TransformedRequest, Silo.transformed),
    "/rounds/candidates": (protocol.CandidatesRequest, Silo.candidates),
    "/rounds/lloyd": (protocol.LloydRequest, Silo.lloyd),
    "/rounds/profile": (protocol.ProfileRequest, Silo.profile),
    "/assign": (protocol.AssignRequest, Silo.assign),
    "/close": (None, _close),
}


class BadRequest(SegwiseError):
    """A request the silo refuses (HTTP 400 / 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def dispatch(silo: Silo, path: str, body: bytes) -> bytes:
    """Handle one request body for ``path`` and return the response body (JSON bytes)."""
    from pydantic import ValidationError

    if path == "/info":
        return json.dumps(silo.info()).encode()
    if path not in ROUTES:
        raise BadRequest(404, f"no endpoint {path}")
    model, handler = ROUTES[path]
    try:
        data = json.loads(body or b"{}")
        request = model.model_validate(data) if model is not None else data
    except (ValueError, ValidationError) as exc:
        raise BadRequest(422, f"malformed request to {path}: {exc}") from None
    try:
        result = handler(silo, request)
    except InputError as exc:
        raise BadRequest(400, str(exc)) from None
    return json.dumps(result, allow_nan=False).encode()
