"""The FastAPI application: `create_app(model_path, settings)`.

Nothing is loaded at import time or by `create_app` itself: the model file is read
when the server starts the app (its lifespan), so a broken file stops the start
with the loader's message. Endpoints:

=========================  =================================================
``POST /v1/assign``        one customer, from features or recent transactions
``POST /v1/assign/batch``  up to 10,000 customers from features, in order
``GET /v1/segments``       segments with names, descriptions, sizes, profiles
``GET /v1/model``          model metadata and its feature columns
``POST /v1/admin/reload``  read the model file again and swap it in
``GET /healthz``           the process is up
``GET /readyz``            a model is loaded and served
``GET /metrics``           Prometheus text format
=========================  =================================================

When a token is set, every ``/v1`` endpoint needs ``Authorization: Bearer TOKEN``
(compared in constant time) and answers 401 without it. SIGHUP reloads the model
like ``POST /v1/admin/reload``. Request bodies are parsed and validated here, not
by FastAPI, because their schemas belong to the model being served and change on
reload; the OpenAPI document is generated from the current model's schemas.

The two assignment endpoints are the hot path. `DirectRoutes` answers them in front
of the router (the routes stay, for the OpenAPI document, and answer the same with
the same functions); the model's preparation and assignment are compiled at load
(`segwise.serve.compiled`), batches are read straight into arrays
(`segwise.serve.fastparse`), and answers are serialised with orjson. Where the time
goes: ``bench/serve.py --profile``.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import os
import shutil
import signal
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from segwise._version import __version__
from segwise.serve.metrics import CONTENT_TYPE, Metrics
from segwise.serve.middleware import Answer, BodyLimitMiddleware, DirectRoutes, MetricsMiddleware
from segwise.serve.schemas import (
    AssignResponse,
    BatchResponse,
    ErrorResponse,
    Health,
    InvalidRequest,
    ModelInfo,
    Readiness,
    ReloadResponse,
    SegmentsResponse,
    ValidationErrorResponse,
    issue,
)
from segwise.serve.settings import MODEL_ENV, Settings
from segwise.serve.state import ModelHolder, ReloadFailed, ServedModel
from segwise.serve.transactions import features_from_transactions

__all__ = ["create_app", "create_app_from_environment"]

log = logging.getLogger("segwise.serve")

_JSON = "application/json"
#: Batches up to this size are answered on the event loop: a worker thread would cost
#: more CPU in GIL hand-overs than the few milliseconds of work it keeps off the loop
#: (measured with bench/serve.py). Larger batches go to a thread so that single
#: assignments keep being answered meanwhile.
INLINE_BATCH_BYTES = 1024 * 1024
_NO_MODEL = orjson.dumps({"detail": "no model is loaded"})
_AUTH_ERRORS = {401: {"model": ErrorResponse, "description": "Missing or invalid bearer token."}}
_BODY_ERRORS = {
    413: {"model": ErrorResponse, "description": "The request body is larger than the limit."},
    422: {"model": ValidationErrorResponse, "description": "The body is not valid JSON or fails validation; "
          "each issue names the field."},
}


def _body(name: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}}}


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=_JSON)


def _answer(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type=_JSON)


def _settle_heap() -> None:
    """Take every object alive now out of the garbage collector's sight (`gc.freeze`).

    A worker holds a few hundred thousand long-lived objects (the model, numpy, pandas,
    scikit-learn, FastAPI). A full collection walks all of them, about 0.1 s on the
    2-core machine, and that pause lands in the latency of every request in flight: it
    was the p99 of the service (``bench/serve.py``). Requests make only short-lived
    objects, so the collector need not look at these again. What an earlier call froze
    is unfrozen and collected first, so that a model replaced by a reload is freed
    (reference cycles included).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _value(features: dict[str, Any], columns: tuple[str, ...]) -> dict[str, float] | None:
    """The predicted-value columns of a customer's features, computed from transactions or sent (validated
    within `CustomerValue`'s ranges); None when the model has none or one of them is missing."""
    if not columns or any(features.get(c) is None for c in columns):
        return None
    return {c: float(features[c]) for c in columns}


def create_app(model_path: str | os.PathLike, settings: Settings | None = None) -> FastAPI:
    """The assignment service for the model file at ``model_path``.

    Parameters
    ----------
    model_path : path
        A ``model.segwise`` file. It is read when the app starts and again on each
        reload, from this path only.
    settings : Settings, optional
        Token, limits; defaults to `Settings()` (no authentication).

    Returns
    -------
    FastAPI
        Serve it with uvicorn (``segwise serve MODEL`` does).
    """
    settings = settings or Settings()
    holder = ModelHolder(Path(model_path), settings)
    temp = {"dir": ""}

    async def on_reload(previous: ServedModel, new: ServedModel) -> None:
        metrics.serving(new.version, new.info["method"], (previous.version, previous.info["method"]))
        app.openapi_schema = None
        if settings.supervised and new.version != previous.version:
            # Several workers share the port: the supervisor replaces each of them,
            # new before old, and every new one loads the file just checked here.
            os.kill(os.getppid(), signal.SIGHUP)

    async def reload() -> tuple[ServedModel, ServedModel]:
        try:
            previous, new = await holder.reload()
        except ReloadFailed:
            metrics.reloads.labels("rejected").inc()
            raise
        metrics.reloads.labels("ok").inc()
        await on_reload(previous, new)
        _settle_heap()
        return previous, new

    def on_sighup() -> None:
        async def run() -> None:
            try:
                await reload()
            except ReloadFailed:
                pass  # logged by the holder; the previous model keeps serving

        asyncio.ensure_future(run())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        served = holder.load()
        metrics.serving(served.version, served.info["method"])
        temp["dir"] = tempfile.mkdtemp(prefix="segwise-serve-")
        _settle_heap()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
            hup = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no SIGHUP here
            hup = False
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            shutil.rmtree(temp["dir"], ignore_errors=True)
            metrics.close()

    app = FastAPI(
        title="segwise assignment API",
        version=__version__,
        description=(
            "Assigns customers to the segments of a trained segwise model in real time. Features are the "
            "model's raw feature columns (as `segwise features` writes them); or send one customer's recent "
            "transactions with an `as_of` date and the service computes the features with the model's own "
            "definitions. k-means has no probabilities (null); soft methods return them. Recommended actions "
            "come from the model's playbook when it has one."
        ),
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        debug=False,
    )
    paths = ["/v1/assign", "/v1/assign/batch", "/v1/segments", "/v1/model", "/v1/admin/reload", "/healthz",
             "/readyz", "/metrics", "/openapi.json", "/docs"]
    metrics = Metrics(paths)
    app.state.holder = holder
    app.state.metrics = metrics

    bearer = HTTPBearer(auto_error=False, description="The token given to `segwise serve` (--token-file or "
                                                      "SEGWISE_API_TOKEN).")

    def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, settings.token.encode()):
            raise HTTPException(401, "missing or invalid bearer token: send 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_token)] if settings.token else [],
                   responses=_AUTH_ERRORS if settings.token else {})

    def current() -> ServedModel:
        served = holder.current
        if served is None:
            raise HTTPException(503, "no model is loaded")
        return served

    async def answer_assign(body: bytes) -> Answer:
        """``POST /v1/assign``: status and JSON body (the route and `DirectRoutes` send it)."""
        served = holder.current
        if served is None:
            return 503, _NO_MODEL
        try:
            parsed = served.schemas.parse_single(body)
            if parsed.transactions is not None:
                if served.transactions_problem:
                    raise InvalidRequest([issue(("transactions",), served.transactions_problem)])
                features = await run_in_threadpool(
                    features_from_transactions, served.model, parsed.transactions, parsed.as_of,
                    served.schemas.transaction_fields, temp["dir"], served.transactions_spec,
                )
                value = _value(features, served.value_columns)
            else:
                features = parsed.features
                value = _value(features, served.schemas.value_columns)
        except InvalidRequest as exc:
            return 422, orjson.dumps({"detail": exc.errors})
        result = served.compiled.assign_rows([features])
        segment_id = int(result.segment_id[0])
        metrics.count_assignments(result.segment_id, served.names)
        return 200, orjson.dumps({
            "customer_id": parsed.customer_id, "segment_id": segment_id, "segment_name": served.names[segment_id],
            "confidence": float(result.confidence[0]),
            "probabilities": result.probabilities[0].tolist() if result.probabilities is not None else None,
            "actions": served.actions(segment_id, features),
            "as_of": parsed.as_of.isoformat() if parsed.as_of is not None else None,
            "value": value,
            "model_version": served.version,
        })

    def assign_batch_sync(served: ServedModel, body: bytes) -> tuple[Any, bytes]:
        fast = served.requests.batch(body)
        if fast is not None:  # read straight into arrays
            customer_ids, features = fast.customer_ids, fast.features
            result = served.compiled.assign_arrays(fast.values, fast.categories)
        else:
            customers = served.schemas.parse_batch(body)
            customer_ids = [c["customer_id"] for c in customers]
            features = [c["features"] for c in customers]
            result = served.compiled.assign_rows(features)
        names = served.names
        value_columns = served.schemas.value_columns
        values = [_value(f, value_columns) for f in features] if value_columns else [None] * len(features)
        assignments = [
            {"customer_id": c, "segment_id": s, "segment_name": names[s], "confidence": conf, "value": v}
            for c, s, conf, v in zip(customer_ids, result.segment_id.tolist(), result.confidence.tolist(), values)
        ]
        return result.segment_id, orjson.dumps({"assignments": assignments, "model_version": served.version})

    async def answer_batch(body: bytes) -> Answer:
        """``POST /v1/assign/batch``: status and JSON body."""
        served = holder.current
        if served is None:
            return 503, _NO_MODEL
        try:
            if len(body) <= INLINE_BATCH_BYTES:
                segment_ids, payload = assign_batch_sync(served, body)
            else:
                segment_ids, payload = await run_in_threadpool(assign_batch_sync, served, body)
        except InvalidRequest as exc:
            return 422, orjson.dumps({"detail": exc.errors})
        metrics.count_assignments(segment_ids, served.names)
        return 200, payload

    @v1.post("/assign", response_model=AssignResponse, responses=_BODY_ERRORS, tags=["assign"],
             summary="Assign one customer", openapi_extra=_body("AssignRequest"))
    async def assign(request: Request) -> Response:
        """Assign one customer from their features, or from their recent transactions and an as_of date.

        Returns the segment id and name, the confidence, the probabilities per segment (soft methods
        only; null for k-means), the playbook's recommended actions (null without a playbook) and the
        model version. With transactions, features are computed as of `as_of` with the model's feature
        definitions (only lines dated before it count).
        """
        return _answer(*await answer_assign(await request.body()))

    @v1.post("/assign/batch", response_model=BatchResponse, responses=_BODY_ERRORS, tags=["assign"],
             summary="Assign up to 10,000 customers", openapi_extra=_body("BatchRequest"))
    async def assign_batch(request: Request) -> Response:
        """Assign many customers from their features; assignments come back in request order."""
        return _answer(*await answer_batch(await request.body()))

    @v1.get("/segments", response_model=SegmentsResponse, tags=["model"], summary="The model's segments")
    async def segments() -> Response:
        """Every segment with its name, description, size, revenue share, traits and feature profile."""
        return Response(current().segments_body, media_type=_JSON)

    @v1.get("/model", response_model=ModelInfo, tags=["model"], summary="Model metadata")
    async def model_info() -> Response:
        """Method, training as_of, feature columns (with which ones /v1/assign needs), training size,
        creation time and the model file's SHA-256."""
        return Response(current().info_body, media_type=_JSON)

    @v1.post("/admin/reload", response_model=ReloadResponse, tags=["admin"], summary="Reload the model file",
             responses={409: {"model": ErrorResponse, "description": "The file cannot be served; the previous "
                                                                     "model keeps serving."}})
    async def admin_reload() -> Response:
        """Read the model file given at start again and swap it in atomically; requests already being
        answered finish on the previous model. A file that cannot be loaded or cannot assign is rejected
        with 409 and the previous model keeps serving."""
        try:
            previous, new = await reload()
        except ReloadFailed as exc:
            return _json({"detail": f"reload rejected, the previous model keeps serving: {exc}"}, 409)
        return _json({
            "status": "reloaded", "previous_model_version": previous.version, "model": new.info,
            "workers_restarting": settings.supervised and new.version != previous.version,
        })

    app.include_router(v1)

    @app.get("/healthz", response_model=Health, tags=["operations"], summary="Liveness")
    async def healthz() -> Response:
        """The process is up and answering."""
        return _json({"status": "ok"})

    @app.get("/readyz", response_model=Readiness, tags=["operations"], summary="Readiness",
             responses={503: {"model": ErrorResponse, "description": "No model is loaded."}})
    async def readyz() -> Response:
        """A model is loaded and being served."""
        served = holder.current
        if served is None:
            return _json({"detail": "no model is loaded"}, 503)
        return _json({"status": "ready", "model_version": served.version})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics",
             responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
                              "description": "Prometheus text exposition format."}})
    async def prometheus_metrics() -> Response:
        """Request counts and latency histograms by endpoint and status, assignments by segment."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.exception_handler(InvalidRequest)
    async def invalid_request(request: Request, exc: InvalidRequest) -> Response:
        return _json({"detail": exc.errors}, 422)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> Response:
        return _json({"detail": [{"type": e.get("type", "value_error"), "loc": list(e.get("loc", [])),
                                  "msg": e.get("msg", "")} for e in exc.errors()]}, 422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    def openapi() -> dict[str, Any]:
        served = holder.current
        key = served.version if served is not None else ""
        if app.openapi_schema is None or app.state.openapi_version != key:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            if served is not None:
                components = schema.setdefault("components", {}).setdefault("schemas", {})
                components.update(served.schemas.components)
                operations = schema["paths"]
                for path, name in (("/v1/assign", "single"), ("/v1/assign/batch", "batch")):
                    operations[path]["post"]["requestBody"]["content"][_JSON]["examples"] = served.examples[name]
            app.openapi_schema = schema
            app.state.openapi_version = key
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.openapi_version = None
    # Innermost: the assignment endpoints answered without routing (see DirectRoutes),
    # inside the body limit and the metrics like every other request.
    app.add_middleware(DirectRoutes, handlers={"/v1/assign": answer_assign, "/v1/assign/batch": answer_batch},
                       token=settings.token)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def create_app_from_environment() -> FastAPI:
    """`create_app` for a worker of ``segwise serve --workers N`` (configured through the environment)."""
    return create_app(os.environ[MODEL_ENV], Settings.from_environment(os.environ))
