"""``segwise serve``: the real-time assignment API (FastAPI app run by uvicorn)."""

from __future__ import annotations

import copy
import errno
import os
import socket
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from segwise.cli.app import app, err, out
from segwise.cli.errors import handle_errors
from segwise.errors import InputError

#: Seconds a new worker may take to import segwise and load the model on a reload
#: (uvicorn's default of 5 s is short on a busy 2-core machine).
WORKER_START_SECONDS = 120


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"port {port} on {host} is already in use: choose another --port") from None
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None


def _log_config() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["segwise"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


@app.command()
@handle_errors
def serve(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model.segwise file (the only file served).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (each holds the model).")] = 1,
    token_file: Annotated[
        Optional[Path],
        typer.Option("--token-file", help="File holding the bearer token every /v1 request must send "
                                          "(default: $SEGWISE_API_TOKEN; neither: no authentication)."),
    ] = None,
) -> None:
    """Serve a model over HTTP: real-time segment assignment (POST /v1/assign).

    Endpoints: /v1/assign, /v1/assign/batch, /v1/segments, /v1/model, /v1/admin/reload,
    /healthz, /readyz, /metrics; OpenAPI at /openapi.json. SIGHUP (to this process) or
    POST /v1/admin/reload reloads the model file without downtime; a broken file is
    rejected and the previous model keeps serving.
    """
    import uvicorn

    from segwise.model import load_model
    from segwise.serve.settings import MODEL_ENV, SETTINGS_ENV, TOKEN_FILE_ENV, Settings, resolve_token

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {port}")
    token = resolve_token(token_file)
    model = load_model(model_path)
    settings = Settings(token=token, supervisor_pid=os.getpid() if workers > 1 else None)
    _check_port_free(host, port)
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] serving on {host} without authentication; "
                  "give --token-file or set SEGWISE_API_TOKEN", highlight=False)
    out.print(
        f"serving {model_path} ({model.metadata.get('method')}, {model.segmenter.n_segments_} segments, "
        f"model {model.file_sha256[:12]}) on http://{host}:{port} with {workers} worker(s); "
        f"authentication: {'bearer token' if token else 'none'}",
        highlight=False, soft_wrap=True,
    )
    common = dict(host=host, port=port, log_config=_log_config(), access_log=False, server_header=False,
                  timeout_graceful_shutdown=30)
    if workers == 1:
        from segwise.serve import create_app

        uvicorn.run(create_app(model_path.resolve(), settings), **common)
        return
    os.environ[MODEL_ENV] = str(model_path.resolve())
    os.environ[SETTINGS_ENV] = settings.to_environment()
    if token_file is not None:
        os.environ[TOKEN_FILE_ENV] = str(token_file.resolve())
    # Workers add their metrics up through files in one directory (prometheus_client).
    metrics_dir = tempfile.mkdtemp(prefix="segwise-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("segwise.serve.app:create_app_from_environment", factory=True, workers=workers,
                    timeout_worker_healthcheck=WORKER_START_SECONDS, **common)
    finally:
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)
