"""The silo's HTTP face: a FastAPI app over a `segwise.federated.silo.Silo`.

Why FastAPI rather than Flower: the protocol is a dozen request/response rounds of
small JSON aggregates, which FastAPI (already a dependency, for serving) expresses
directly, validates with pydantic and lets the coordinator log byte for byte; Flower
brings a gRPC stack, its own server process model and parameter serialisation built
for exchanging model weights, none of which this needs, and would hide what crosses
the wire behind its framing.

Endpoints (all POST but ``/info``; bodies in `segwise.federated.protocol`, handled by
`segwise.federated.routes`):
``/session``, ``/features``, ``/rounds/prepare``, ``/rounds/transformed``,
``/rounds/candidates``, ``/rounds/lloyd``, ``/rounds/profile``, ``/assign``,
``/close``. Bad requests get 400 with the reason (never personal data); malformed
bodies 422.
"""

from __future__ import annotations

import socket
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from segwise.federated.routes import ROUTES, BadRequest, dispatch
from segwise.federated.silo import Silo

__all__ = ["create_silo_app", "serve_silo"]


def create_silo_app(silo: Silo):
    """The FastAPI app serving one silo."""
    app = FastAPI(title=f"segwise silo {silo.name}", docs_url=None, redoc_url=None, openapi_url=None)

    async def handle(request: Request) -> Response:
        body = await request.body()
        try:
            # Rounds are CPU-bound: run them in the thread pool so the event loop
            # stays responsive.
            payload = await run_in_threadpool(dispatch, silo, request.url.path, body)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return Response(payload, media_type="application/json")

    app.add_api_route("/info", handle, methods=["GET"])
    for path in ROUTES:
        app.add_api_route(path, handle, methods=["POST"])
    return app


def serve_silo(silo: Silo, *, host: str = "127.0.0.1", port: int = 0, on_ready: Callable[[str], None] | None = None
               ) -> None:
    """Serve ``silo`` until interrupted; ``on_ready(url)`` is called once it listens.

    ``port=0`` takes a free port (the URL passed to ``on_ready`` names it).
    """
    import asyncio

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    url = f"http://{host}:{sock.getsockname()[1]}"
    config = uvicorn.Config(create_silo_app(silo), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started and on_ready is not None:
            on_ready(url)
        await task

    asyncio.run(run())
