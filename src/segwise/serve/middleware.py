"""ASGI middleware of the service: request metrics, the request body size limit, and
the direct route of the assignment endpoints.

All are plain ASGI (not Starlette's BaseHTTPMiddleware, which costs a task and a
stream per request on the hot path).
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any, Awaitable, Callable

import orjson

from segwise.serve.metrics import Metrics

__all__ = ["MetricsMiddleware", "BodyLimitMiddleware", "DirectRoutes", "Answer", "bearer_credentials"]

log = logging.getLogger("segwise.serve")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class MetricsMiddleware:
    """Counts every HTTP request and its latency by endpoint, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.observe(scope["path"], scope["method"], status, time.perf_counter() - started)


async def send_json(send: Send, status: int, payload: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Send a whole JSON response from ASGI middleware."""
    body = orjson.dumps(payload)
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Answers 413 to a request body over ``max_bytes``, without reading more of it.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is
    read up to the limit and refused when it passes it. The body is then handed to
    the app whole (the app reads whole bodies anyway).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json(send, 400, {"detail": "the Content-Length header is not a number"})
                    return
                break
        if declared is not None and declared > self.max_bytes:
            await self._too_large(send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send, None)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, declared: int | None) -> None:
        size = f" ({declared:,} bytes)" if declared is not None else ""
        await send_json(send, 413, {
            "detail": f"the request body{size} is larger than the limit of {self.max_bytes:,} bytes; "
                      "send fewer customers per batch",
        }, headers=[(b"connection", b"close")])


#: What a direct route answers: status and JSON body.
Answer = tuple[int, bytes]
#: A direct route: the whole request body in, the answer out.
Handler = Callable[[bytes], Awaitable[Answer]]


def bearer_credentials(headers: list[tuple[bytes, bytes]]) -> str:
    """The credentials of an ``Authorization: Bearer ...`` header, or ``""``.

    The same reading as FastAPI's `HTTPBearer` (which the routed endpoints use): the
    first Authorization header, scheme and credentials split at the first space,
    the scheme compared without case, the credentials stripped.
    """
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            credentials = credentials.strip()
            return credentials if scheme.lower() == "bearer" and credentials else ""
    return ""


class DirectRoutes:
    """Answers ``POST`` to a few paths directly, in front of the router.

    The assignment endpoints are the service's hot path: for one customer, routing,
    the request object and dependency injection of the framework cost several times
    the assignment itself (``bench/serve.py --profile``). Their answers are computed
    by the same functions the routed endpoints call (`segwise.serve.app`), with the
    same token check, status codes and bodies; the routes stay registered, and
    describe the endpoints in the OpenAPI document.

    Parameters
    ----------
    app : ASGI app
    handlers : dict of path to handler
        ``async handler(body) -> (status, body)``.
    token : str, optional
        When set, requests need ``Authorization: Bearer TOKEN`` (401 otherwise).
    """

    def __init__(self, app: ASGIApp, handlers: dict[str, Handler], token: str | None = None) -> None:
        self.app = app
        self.handlers = handlers
        self.token = (token or "").encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        if self.token and not hmac.compare_digest(bearer_credentials(scope["headers"]).encode(), self.token):
            await send_json(send, 401, {"detail": UNAUTHORIZED}, headers=[(b"www-authenticate", b"Bearer")])
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            status, body = await handler(b"".join(chunks))
        except Exception:  # noqa: BLE001 - the same answer as the app's handler of unexpected errors
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            status, body = 500, INTERNAL_ERROR
        await send({
            "type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})


UNAUTHORIZED = "missing or invalid bearer token: send 'Authorization: Bearer TOKEN'"
INTERNAL_ERROR = orjson.dumps({"detail": "internal error; see the server log"})
