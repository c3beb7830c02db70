"""Bearer-token authentication: on with SEGWISE_API_TOKEN, every /v1 endpoint needs the token."""

from __future__ import annotations

import pytest

from segwise.errors import InputError
from segwise.serve.settings import Settings, read_token_file, resolve_token

from .server import Server

TOKEN = "3b1f6a0c9d2e4f5a8b7c6d5e4f3a2b1c"


@pytest.fixture(scope="module")
def server(model_a, tmp_path_factory):
    log = tmp_path_factory.mktemp("auth") / "server.log"
    running = Server([model_a.path], log, env={"SEGWISE_API_TOKEN": TOKEN}).wait_ready()
    yield running
    running.stop()


def _v1_requests(model_a):
    item = model_a.feature_rows(1)[0]
    return [
        ("POST", "/v1/assign", item),
        ("POST", "/v1/assign/batch", {"customers": [item]}),
        ("GET", "/v1/segments", None),
        ("GET", "/v1/model", None),
        ("POST", "/v1/admin/reload", None),
    ]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"Authorization": "Bearer"},
], ids=["none", "wrong", "longer", "basic scheme", "no scheme", "empty"])
def test_every_v1_endpoint_refuses_a_missing_or_wrong_token(server, model_a, headers):
    with server.client() as http:
        for method, path, body in _v1_requests(model_a):
            response = http.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {"detail": "missing or invalid bearer token: send 'Authorization: Bearer TOKEN'"}


def test_the_right_token_opens_every_v1_endpoint(server, model_a):
    with server.client(TOKEN) as http:
        for method, path, body in _v1_requests(model_a):
            assert http.request(method, path, json=body).status_code == 200, path


def test_token_is_checked_before_the_body(server):
    with server.client() as http:
        assert http.post("/v1/assign", content=b"not json").status_code == 401


def test_operations_endpoints_stay_open(server):
    with server.client() as http:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert http.get(path).status_code == 200, path


def test_openapi_declares_the_bearer_scheme(server):
    with server.client() as http:
        schema = http.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["HTTPBearer"]["description"]}
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            assert ("security" in operation) == path.startswith("/v1"), path
            if path.startswith("/v1"):
                assert "401" in operation["responses"]


# --------------------------------------------------------------------------- where the token comes from


def test_token_file_wins_over_the_environment(tmp_path):
    path = tmp_path / "token"
    path.write_text("from-the-file\n")
    assert resolve_token(path, {"SEGWISE_API_TOKEN": "from-env"}) == "from-the-file"
    assert resolve_token(None, {"SEGWISE_API_TOKEN": " from-env "}) == "from-env"
    assert resolve_token(None, {}) is None


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty; put the bearer token in it"),
    ("two words", "the token must be printable ASCII without spaces"),
    ("caf\u00e9", "the token must be printable ASCII without spaces"),
])
def test_bad_token_files_are_refused(tmp_path, content, message):
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_token_file(path)


def test_missing_token_file_and_empty_variable(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_token_file(tmp_path / "nope")
    with pytest.raises(InputError, match="SEGWISE_API_TOKEN is set but empty"):
        resolve_token(None, {"SEGWISE_API_TOKEN": "  "})


def test_settings_validate_limits_and_hide_the_token():
    with pytest.raises(InputError, match="The 'max_batch_size' parameter of Settings must be an int in the range"):
        Settings(max_batch_size=0)
    assert TOKEN not in repr(Settings(token=TOKEN))
    assert TOKEN not in Settings(token=TOKEN).to_environment()


def test_only_a_worker_of_segwise_serve_asks_its_parent_to_restart_workers():
    import os

    assert Settings(supervisor_pid=os.getppid()).supervised is True
    assert Settings(supervisor_pid=os.getpid()).supervised is False  # not our parent
    assert Settings().supervised is False
    restored = Settings.from_environment({"SEGWISE_SERVE_SETTINGS": Settings(supervisor_pid=42).to_environment()})
    assert restored.supervisor_pid == 42 and restored.token is None
