"""The assignment endpoints answered directly (`DirectRoutes`) equal the routed FastAPI endpoints.

The same app is built twice: as served (the direct route in front of the router), and
with the direct route taken out of its middleware, so that FastAPI's routing,
dependencies and exception handlers answer. Every request gets the same status,
JSON body and authentication header from both. Also: the app takes its long-lived
objects out of the garbage collector's sight at start and after a reload.
"""

from __future__ import annotations

import gc
import json
import weakref

import httpx
import pytest

from segwise.serve.app import create_app
from segwise.serve.middleware import DirectRoutes, bearer_credentials
from segwise.serve.settings import Settings

from .server import run_coroutine

TOKEN = "9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"


def _requests(model_a) -> list[tuple[str, bytes | None, dict]]:
    item = model_a.feature_rows(1)[0]
    features = item["features"]
    column = next(iter(features))
    json_body = lambda payload: json.dumps(payload).encode()  # noqa: E731
    return [
        ("/v1/assign", json_body(item), {}),
        ("/v1/assign", json_body({**item, "features": {**features, column: None}}), {}),
        ("/v1/assign", json_body({**item, "features": {**features, column: "12"}}), {}),
        ("/v1/assign", json_body({**item, "features": {**features, column: True}}), {}),
        ("/v1/assign", json_body({**item, "features": {**features, column: -1e13}}), {}),
        ("/v1/assign", json_body({**item, "features": {k: v for k, v in features.items() if k != column}}), {}),
        ("/v1/assign", json_body({**item, "features": {**features, "not_a_feature": 1.0}}), {}),
        ("/v1/assign", json_body({**item, "as_of": "2024-01-01"}), {}),
        ("/v1/assign", json_body({"customer_id": "C-1"}), {}),
        ("/v1/assign", json_body({**item, "customer_id": ""}), {}),
        ("/v1/assign", b'{"customer_id": "C-1", "features": {"x": NaN}}', {}),
        ("/v1/assign", b"not json", {}),
        ("/v1/assign", b"", {}),
        ("/v1/assign", b"[]", {}),
        ("/v1/assign/batch", json_body({"customers": model_a.feature_rows(5)}), {}),
        ("/v1/assign/batch", json_body({"customers": []}), {}),
        ("/v1/assign/batch", json_body({"customers": [item, {**item, "features": {**features, column: "x"}}]}), {}),
        ("/v1/assign/batch", json_body({"customers": item}), {}),
        ("/v1/assign/batch", b"{", {}),
    ]


async def _answers(app, requests, headers=None) -> list[tuple[int, object, str | None]]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers or {}) as client:
            out = []
            for path, body, extra in requests:
                response = await client.post(path, content=body, headers={"content-type": "application/json",
                                                                           **extra})
                out.append((response.status_code, response.json(), response.headers.get("www-authenticate")))
            return out


def _both(model_a, settings: Settings, requests, headers=None):
    direct = create_app(model_a.path, settings)
    routed = create_app(model_a.path, settings)
    routed.user_middleware = [m for m in routed.user_middleware if m.cls is not DirectRoutes]
    assert len(routed.user_middleware) == len(direct.user_middleware) - 1
    return (run_coroutine(_answers(direct, requests, headers)), run_coroutine(_answers(routed, requests, headers)))


def test_direct_and_routed_answers_are_the_same(model_a):
    requests = _requests(model_a)
    direct, routed = _both(model_a, Settings(), requests)
    assert direct == routed
    statuses = [status for status, _, _ in direct]
    assert statuses.count(200) == 3 and statuses.count(422) == len(requests) - 3
    assert direct[0][1]["segment_id"] == int(model_a.model.assign_rows([model_a.feature_rows(1)[0]["features"]])
                                             .segment_id[0])


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"bearer {TOKEN}", f"Bearer  {TOKEN} ",
                                           f"Basic {TOKEN}", TOKEN, "Bearer"])
def test_direct_and_routed_tokens_are_read_the_same(model_a, authorization):
    requests = [(path, body, {}) for path, body, _ in _requests(model_a)[:1] + _requests(model_a)[14:15]]
    headers = {"Authorization": authorization} if authorization is not None else {}
    direct, routed = _both(model_a, Settings(token=TOKEN), requests, headers)
    assert direct == routed
    expected = 200 if authorization in (f"bearer {TOKEN}", f"Bearer  {TOKEN} ") else 401
    assert [status for status, _, _ in direct] == [expected, expected]


def test_bearer_credentials():
    assert bearer_credentials([(b"authorization", b"Bearer abc")]) == "abc"
    assert bearer_credentials([(b"authorization", b"BEARER  abc ")]) == "abc"
    assert bearer_credentials([(b"authorization", b"Basic abc")]) == ""
    assert bearer_credentials([(b"authorization", b"Bearer")]) == ""
    assert bearer_credentials([(b"host", b"x")]) == ""


def test_other_methods_and_paths_go_to_the_router(model_a):
    async def run():
        app = create_app(model_a.path, Settings())
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                return [(await client.get("/v1/assign")).status_code,
                        (await client.post("/v1/assign/")).status_code,
                        (await client.get("/v1/model")).status_code]

    assert run_coroutine(run()) == [405, 307, 200]


@pytest.fixture
def restore_gc():
    yield
    gc.unfreeze()  # the app froze this test process's heap; give it back to the collector


class _Node:
    """An object that can sit in a reference cycle and be watched with a weak reference."""


def test_the_heap_is_frozen_at_start_and_unfrozen_and_collected_at_a_reload(model_a, restore_gc):
    async def run():
        # A reference cycle alive when the app starts: frozen with everything else.
        node = _Node()
        node.self = node
        watch = weakref.ref(node)
        app = create_app(model_a.path, Settings())
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            del node
            gc.collect()
            kept_while_frozen = watch() is not None  # garbage now, but out of the collector's sight
            first = weakref.ref(app.state.holder.current)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                assert (await client.post("/v1/admin/reload")).status_code == 200
            return frozen, kept_while_frozen, watch, first, gc.get_freeze_count()

    frozen, kept_while_frozen, watch, first, refrozen = run_coroutine(run())
    assert frozen > 10_000 and refrozen > 10_000
    assert kept_while_frozen
    assert watch() is None  # the reload unfroze and collected it
    assert first() is None  # the model the reload replaced is freed
