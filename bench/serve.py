"""Benchmark of the assignment API (`segwise serve`): latency and throughput on 127.0.0.1.

Trains a model on a synthetic population, starts ``segwise serve MODEL --workers N``
on a free loopback port and drives it with a load generator:

- single assignments (``POST /v1/assign``, features form) with 1, 16 and 64
  concurrent clients, each for ``--duration`` seconds: requests per second, p50
  and p99 latency;
- batches of ``--batch-size`` customers (``POST /v1/assign/batch``): customers
  assigned per second.

The load generator is ``wrk`` when it is on PATH (``apt-get install wrk``): written
in C, it leaves the two cores to the server. Without it an asyncio httpx client
is used, which costs far more CPU per request and so understates the server.
``--compare-h11`` also measures one worker on uvicorn's pure-Python stack (h11 on
asyncio) against httptools on uvloop, the reason those two are dependencies.

Results go to stdout and to ``bench/results/serve-<date>.json`` with the machine,
its load average before and after every run, and the versions. The machine may be
shared while this runs: read the load averages next to the figures.

``--profile`` times, in this process, each step of answering one assignment and
one batch (parsing, validation, building the arrays, preparation, prediction,
serialisation, metrics), the model's own `assign_rows` path next to the compiled one
the service uses (`segwise.serve.compiled`), and the whole ASGI application called
directly, whose difference from the steps is the framework; then it stops.

``--work DIR`` keeps the trained model and the request bodies in DIR and reuses them
on the next run (so that two versions of the code are measured on the same model).

Run: ``.venv/bin/python bench/serve.py`` (``--duration 5`` for a quick look).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# The test suite's helper that starts `segwise serve` and waits until it is ready.
sys.path.insert(0, str(HERE.parent))
from tests.serve.server import Server  # noqa: E402

from segwise.serve.settings import MODEL_ENV  # noqa: E402

START_SECONDS = 300

_WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local counter = 0
local headers = {["Content-Type"] = "application/json"}
request = function()
  counter = counter %% #bodies + 1
  return wrk.format("POST", "%(path)s", headers, bodies[counter])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "mean_us": %%.1f, '
    .. '"max_us": %%d, "errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own = int(stat.parent.name)
        if own == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def train(n_customers: int, out: Path) -> tuple[Path, list[dict]]:
    """A model on a synthetic population; returns its path and every customer as an API item."""
    import pandas as pd

    import segwise
    from segwise.runs import segment

    population = segwise.generate_population(n_customers, seed=1)
    result = segment(population.orders, random_state=0)
    result.save(out, store=False)
    columns = list(result.model.input_columns)
    frame = result.features.frame[columns]
    items = [{"customer_id": str(cid), "features": {c: (None if pd.isna(v) else float(v)) for c, v in row.items()}}
             for cid, row in zip(frame.index, frame.to_dict("records"))]
    return out / "model.segwise", items


def start_server(model: Path, workers: int, log: Path, stack: str | None = None) -> Server:
    """``segwise serve`` with ``workers``, or one uvicorn worker on an HTTP stack ("h11/asyncio")."""
    if stack is None:
        return Server([model, "--workers", workers], log).wait_ready(START_SECONDS)
    http, loop = stack.split("/")
    command = [sys.executable, "-m", "uvicorn", "segwise.serve.app:create_app_from_environment", "--factory",
               "--http", http, "--loop", loop, "--no-access-log", "--log-level", "warning"]
    return Server([], log, env={MODEL_ENV: str(model)}, command=command).wait_ready(START_SECONDS)


def run_wrk(url: str, path: str, bodies_file: Path, clients: int, duration: int, work: Path) -> dict:
    script = work / f"wrk-{path.strip('/').replace('/', '-')}.lua"
    script.write_text(_WRK_SCRIPT % {"bodies": bodies_file, "path": path})
    threads = min(2, clients)
    argv = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--timeout", "30s", "-s", str(script), url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in output.splitlines() if ln.startswith("WRK_JSON "))
    raw = json.loads(line[len("WRK_JSON "):])
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"], "seconds": round(seconds, 2),
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 3), "p99_ms": round(raw["p99_us"] / 1000, 3),
        "mean_ms": round(raw["mean_us"] / 1000, 3), "max_ms": round(raw["max_us"] / 1000, 3),
        "errors": raw["errors"],
    }


def run_httpx(url: str, path: str, bodies: list[bytes], clients: int, duration: int) -> dict:
    import httpx

    async def main() -> dict:
        latencies: list[float] = []
        errors = 0
        stop_at = time.perf_counter() + duration
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30,
                                     headers={"content-type": "application/json"}) as client:
            async def worker(offset: int) -> None:
                nonlocal errors
                i = offset
                while time.perf_counter() < stop_at:
                    body = bodies[i % len(bodies)]
                    i += clients
                    started = time.perf_counter()
                    response = await client.post(path, content=body)
                    latencies.append(time.perf_counter() - started)
                    errors += response.status_code != 200

            started = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(clients)))
            seconds = time.perf_counter() - started
        values = np.asarray(latencies) * 1000
        return {
            "requests": len(latencies), "seconds": round(seconds, 2),
            "requests_per_s": round(len(latencies) / seconds, 1),
            "p50_ms": round(float(np.percentile(values, 50)), 3), "p99_ms": round(float(np.percentile(values, 99)), 3),
            "mean_ms": round(float(values.mean()), 3), "max_ms": round(float(values.max()), 3),
            "errors": {"status": int(errors)},
        }

    return asyncio.run(main())


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import fastapi
    import pydantic
    import uvicorn

    versions = {"python": platform.python_version(), "uvicorn": uvicorn.__version__, "fastapi": fastapi.__version__,
                "pydantic": pydantic.VERSION, "numpy": np.__version__}
    for name in ("httptools", "uvloop"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {"cores": os.cpu_count(), "cpu": cpu, "platform": platform.platform(), "versions": versions}


def _best_us(fn, repeat: int = 5, number: int = 1000) -> float:
    """Best mean time of ``fn(i)`` over ``repeat`` rounds of ``number`` calls, in microseconds.

    The best round is the least disturbed by other processes on a shared machine.
    """
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for i in range(number):
            fn(i)
        best = min(best, (time.perf_counter() - started) / number)
    return round(best * 1e6, 2)


def profile(model_path: Path, single_bodies: list[bytes], batch_body: bytes, repeat: int = 9) -> dict:
    """Time each step of answering ``POST /v1/assign`` and ``/v1/assign/batch`` in this process."""
    import json as std_json
    import operator

    import orjson
    from pydantic_core import to_json

    from segwise.serve.app import create_app
    from segwise.serve.settings import Settings

    try:
        from segwise.serve.compiled import CompiledAssigner
    except ImportError:  # the code before the compiled path: its steps are timed without it
        CompiledAssigner = None  # noqa: N806

    app = create_app(model_path, Settings())
    n = len(single_bodies)
    steps: dict[str, float] = {}
    batch: dict[str, float] = {}

    async def run() -> None:
        async with app.router.lifespan_context(app):
            served = app.state.holder.current
            model, metrics = served.model, app.state.metrics
            segmenter = model.segmenter
            pre, clusterer = segmenter.preprocessor_, segmenter.clusterer_
            numeric = list(pre.numeric_in_)
            get = operator.itemgetter(*numeric)
            parsed = [served.schemas.parse_single(b) for b in single_bodies]
            rows = [p.features for p in parsed]
            values = [np.array([get(r)], dtype=np.float64) for r in rows]
            cats = [{c: np.array([r[c]], dtype=object) for c in pre.categorical_levels_} for r in rows]

            def model_prepare(i: int) -> np.ndarray:
                v = values[i % n]
                if getattr(segmenter, "shrinkage_", None) is not None:
                    v = segmenter.shrinkage_.transform_array(v, numeric)
                return pre.transform_arrays(v, cats[i % n])

            prepared = [model_prepare(i) for i in range(n)]
            steps["parse: JSON only (json.loads)"] = _best_us(lambda i: std_json.loads(single_bodies[i % n]), repeat)
            steps["parse: JSON only (orjson.loads)"] = _best_us(lambda i: orjson.loads(single_bodies[i % n]), repeat)
            steps["parse + validate (pydantic, the service's)"] = _best_us(
                lambda i: served.schemas.parse_single(single_bodies[i % n]), repeat)
            steps["arrays from the parsed JSON"] = _best_us(
                lambda i: np.array([get(rows[i % n])], dtype=np.float64), repeat)
            steps["preparation: model (shrinkage + transform_arrays)"] = _best_us(model_prepare, repeat)
            steps["prediction: model (clusterer.assign_prepared)"] = _best_us(
                lambda i: clusterer.assign_prepared(prepared[i % n]), repeat)
            steps["assign_rows: model, all steps"] = _best_us(lambda i: model.assign_rows([rows[i % n]]), repeat)
            if CompiledAssigner is not None:
                compiled = CompiledAssigner.from_model(model)
                arrays = [compiled.values_of([r]) for r in rows]
                ready = [compiled.prepare(*a) for a in arrays]
                steps["preparation: compiled"] = _best_us(lambda i: compiled.prepare(*arrays[i % n]), repeat)
                if hasattr(compiled, "_prepare_one"):
                    steps["preparation: compiled, one row on Python floats"] = _best_us(
                        lambda i: compiled._prepare_one(rows[i % n]), repeat)
                steps["prediction: compiled"] = _best_us(lambda i: compiled.assign_prepared(ready[i % n]), repeat)
                steps["assign_rows: compiled, all steps"] = _best_us(
                    lambda i: compiled.assign_rows([rows[i % n]]), repeat)
            result = model.assign_rows([rows[0]])
            steps["metrics (assignments by segment)"] = _best_us(
                lambda i: metrics.count_assignments(result.segment_id, served.names), repeat)
            answer = {"customer_id": "C-1", "segment_id": 1, "segment_name": served.names[0], "confidence": 0.5,
                      "probabilities": None, "actions": None, "as_of": None, "value": None,
                      "model_version": served.version}
            steps["serialise: pydantic_core.to_json"] = _best_us(lambda i: to_json(answer), repeat)
            steps["serialise: orjson.dumps"] = _best_us(lambda i: orjson.dumps(answer), repeat)

            async def call(body: bytes, path: str) -> None:
                async def receive() -> dict:
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: dict) -> None:
                    if message["type"] == "http.response.start" and message["status"] != 200:
                        raise AssertionError(f"{path} answered {message['status']}")

                scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                         "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                         "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "state": {},
                         "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                                     (b"content-length", str(len(body)).encode())]}
                await app(scope, receive, send)

            for _ in range(repeat):
                for i in range(200):
                    await call(single_bodies[i % n], "/v1/assign")
            best = float("inf")
            for _ in range(repeat):
                started = time.perf_counter()
                for i in range(1000):
                    await call(single_bodies[i % n], "/v1/assign")
                best = min(best, (time.perf_counter() - started) / 1000)
            steps["whole app, in process (ASGI call: framework + every step)"] = round(best * 1e6, 2)

            customers = served.schemas.parse_batch(batch_body)
            features = [c["features"] for c in customers]
            batch["customers"] = len(customers)
            batch["parse + validate (pydantic)"] = _best_us(lambda i: served.schemas.parse_batch(batch_body), repeat, 20)
            batch["assign_rows: model"] = _best_us(lambda i: model.assign_rows(features), repeat, 20)
            if CompiledAssigner is not None:
                batch["assign_rows: compiled"] = _best_us(lambda i: compiled.assign_rows(features), repeat, 20)
            if hasattr(served, "requests"):
                batch["parse + validate: fast (orjson, checks on arrays)"] = _best_us(
                    lambda i: served.requests.batch(batch_body), repeat, 20)
                read = served.requests.batch(batch_body)
                batch["assign_arrays: compiled, from the fast parse"] = _best_us(
                    lambda i: compiled.assign_arrays(read.values, read.categories), repeat, 20)
            out = model.assign_rows(features)
            listed = [{"customer_id": c["customer_id"], "segment_id": s, "segment_name": served.names[s],
                       "confidence": f} for c, s, f in zip(customers, out.segment_id.tolist(),
                                                           out.confidence.tolist())]
            batch["serialise: pydantic_core.to_json"] = _best_us(
                lambda i: to_json({"assignments": listed, "model_version": served.version}), repeat, 20)
            batch["serialise: orjson.dumps"] = _best_us(
                lambda i: orjson.dumps({"assignments": listed, "model_version": served.version}), repeat, 20)
            best = float("inf")
            for _ in range(repeat):
                started = time.perf_counter()
                for i in range(20):
                    await call(batch_body, "/v1/assign/batch")
                best = min(best, (time.perf_counter() - started) / 20)
            batch["whole app, in process (ASGI call)"] = round(best * 1e6, 2)

    asyncio.run(run())
    return {"single_us": steps, "batch_us": batch}


def _run_rows(report: dict) -> dict[tuple[str, int], dict]:
    return {(run["kind"], run["clients"]): run for run in report["runs"]}


def markdown(reports: list[dict], profiles: list[dict] = ()) -> str:
    """A results page: the load runs of every report (each labelled), then the profiles."""
    first = reports[0]
    machine = first["machine"]
    lines = [
        "# Assignment API (`segwise serve`): latency and throughput",
        "",
        f"Measured {first['date']} on {machine['cores']} cores ({machine['cpu']}), {machine['platform']}; "
        f"{first['workers']} workers, load generator: {first['load_generator']}, {first['duration_s']} s per run, "
        f"model trained on {first['training_customers']:,} synthetic customers "
        f"(k-means; the bodies are its customers' features). Client and server share the machine.",
        "",
        "The machine is shared with other work: the load average (1 minute) before and after each run is "
        "given; figures taken under load understate the server. Server CPU per request is the CPU time of "
        "the server's processes divided by the requests answered (what the rate would be on idle cores, "
        "roughly: cores / CPU per request). Runs are listed in the order they were made.",
        "",
        "| code | endpoint | clients | requests/s | customers/s | p50 ms | p99 ms | server CPU ms/request "
        "| errors | load before -> after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in _run_rows(first):
        for report in reports:
            run = _run_rows(report).get(key)
            if run is None:
                continue
            customers = f"{run['customers_per_s']:,.0f}" if "customers_per_s" in run else ""
            lines.append(
                f"| {report.get('label') or report['date']} | {run['kind']} | {run['clients']} "
                f"| {run['requests_per_s']:,.0f} | {customers} | {run['p50_ms']:.2f} | {run['p99_ms']:.2f} "
                f"| {run['server_cpu_ms_per_request']:.3f} | {sum(run['errors'].values())} "
                f"| {run['loadavg_before'][0]:.1f} -> {run['loadavg_after'][0]:.1f} |")
    for profile_report in profiles:
        prof = profile_report["profile"]
        lines += ["", f"## Where the time goes, in process: {profile_report.get('label') or ''}", "",
                  f"`bench/serve.py --profile` ({profile_report['date']}, load {prof['loadavg_before'][0]:.1f} -> "
                  f"{prof['loadavg_after'][0]:.1f}): the best of 9 rounds of each step, microseconds. The whole "
                  "app called in process minus its steps is the framework (routing, middleware); uvicorn and "
                  "the sockets come on top (the server CPU per request above).", "",
                  "| step | one customer (us) |", "|---|---|"]
        lines += [f"| {step} | {us:,.2f} |" for step, us in prof["single_us"].items()]
        lines += ["", "| step | batch (us per batch) |", "|---|---|"]
        lines += [f"| {step} | {us:,.2f} |" for step, us in prof["batch_us"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000, help="training population size")
    parser.add_argument("--duration", type=int, default=30, help="seconds per load run")
    parser.add_argument("--clients", default="1,16,64", help="concurrent clients of the single-assign runs")
    parser.add_argument("--workers", type=int, default=2, help="segwise serve --workers")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--compare-h11", action="store_true", help="also time one worker on h11/asyncio vs httptools/uvloop")
    parser.add_argument("--profile", action="store_true", help="time each step of an answer in process, then stop")
    parser.add_argument("--work", type=Path, default=None, help="keep the model and bodies here and reuse them")
    parser.add_argument("--label", default="", help="a note recorded with the results (e.g. the code measured)")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/serve-DATE.json)")
    parser.add_argument("--markdown", nargs="+", type=Path, metavar="JSON",
                        help="only write a results page from these result files (load runs and profiles) to --out")
    args = parser.parse_args(argv)
    if args.markdown:
        reports = [json.loads(path.read_text()) for path in args.markdown]
        text = markdown([r for r in reports if r.get("runs")], [r for r in reports if "profile" in r])
        if args.out is None:
            print(text)
        else:
            args.out.write_text(text)
            print(f"written to {args.out}")
        return {}

    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "httpx"
    work = args.work or Path(tempfile.mkdtemp(prefix="segwise-bench-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    report: dict = {"benchmark": "serve", "date": started.isoformat(timespec="seconds"), "machine": machine(),
                    "label": args.label, "load_generator": generator, "workers": args.workers,
                    "duration_s": args.duration, "training_customers": args.customers,
                    "batch_size": args.batch_size, "runs": []}
    if generator == "wrk":
        report["load_generator"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    model = work / "run" / "model.segwise"
    if not (model.exists() and (work / "single.jsonl").exists() and (work / "batch.jsonl").exists()):
        print(f"training a model on {args.customers:,} synthetic customers ...", flush=True)
        model, items = train(args.customers, work / "run")
        single_bodies = [json.dumps(item, separators=(",", ":")) for item in items[:2000]]
        batches = []
        for start in range(0, min(len(items), 10 * args.batch_size), args.batch_size):
            chunk = items[start:start + args.batch_size]
            if len(chunk) == args.batch_size:
                batches.append(json.dumps({"customers": chunk}, separators=(",", ":")))
        (work / "single.jsonl").write_text("\n".join(single_bodies) + "\n")
        (work / "batch.jsonl").write_text("\n".join(batches) + "\n")
    else:
        print(f"reusing the model and bodies in {work}", flush=True)
    if args.profile:
        load_before = os.getloadavg()
        report["profile"] = profile(model, [b.encode() for b in (work / "single.jsonl").read_text().splitlines()],
                                    (work / "batch.jsonl").read_text().splitlines()[0].encode())
        report["profile"]["loadavg_before"] = [round(x, 2) for x in load_before]
        report["profile"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        for part in ("single_us", "batch_us"):
            print(f"{part[:-3]} ({'microseconds' if part == 'single_us' else 'microseconds per batch'}):")
            for step, us in report["profile"][part].items():
                print(f"  {step:<62} {us:>12,.2f}")
        out = args.out or HERE / "results" / f"serve-profile-{started:%Y-%m-%d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written to {out}")
        return report

    def load(url: str, path: str, bodies_name: str, clients: int) -> dict:
        if generator == "wrk":
            return run_wrk(url, path, work / bodies_name, clients, args.duration, work)
        lines = (work / bodies_name).read_text().splitlines()
        return run_httpx(url, path, [b.encode() for b in lines], clients, args.duration)

    def measured(target: Server, path: str, bodies_name: str, clients: int) -> tuple[dict, tuple]:
        before = os.getloadavg()
        cpu = tree_cpu_seconds(target.process.pid)
        result = load(target.url, path, bodies_name, clients)
        # Server CPU per request: what the figures would be on idle cores, roughly.
        result["server_cpu_ms_per_request"] = round(
            (tree_cpu_seconds(target.process.pid) - cpu) * 1000 / max(result["requests"], 1), 3)
        return result, before

    def record(kind: str, clients: int, result: dict, load_before: tuple, **extra) -> None:
        entry = {"kind": kind, "clients": clients, **result, **extra,
                 "loadavg_before": [round(x, 2) for x in load_before],
                 "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
        report["runs"].append(entry)
        rate = f"{entry['customers_per_s']:,.0f} customers/s" if "customers_per_s" in entry else \
            f"{entry['requests_per_s']:,.0f} req/s"
        failed = sum(entry["errors"].values())
        print(f"{kind:<26} {clients:>3} clients {rate:>22}  p50 {entry['p50_ms']:7.2f} ms  p99 {entry['p99_ms']:7.2f} ms"
              f"  server CPU {entry['server_cpu_ms_per_request']:.3f} ms/request  errors {failed}"
              f"  load {entry['loadavg_before'][0]:.1f}->{entry['loadavg_after'][0]:.1f}", flush=True)

    server = start_server(model, args.workers, work / "server.log")
    try:
        for clients in [int(c) for c in args.clients.split(",")]:
            record("assign", clients, *measured(server, "/v1/assign", "single.jsonl", clients))
        result, before = measured(server, "/v1/assign/batch", "batch.jsonl", args.batch_clients)
        record("assign/batch", args.batch_clients, result, before, batch_size=args.batch_size,
               customers_per_s=round(result["requests_per_s"] * args.batch_size, 0))
    finally:
        server.stop()
    if args.compare_h11:
        for stack in ("httptools/uvloop", "h11/asyncio"):
            one = start_server(model, 1, work / f"server-{stack.replace('/', '-')}.log", stack=stack)
            try:
                record(f"1 worker {stack}", 16, *measured(one, "/v1/assign", "single.jsonl", 16), stack=stack)
            finally:
                one.stop()
    out = args.out or HERE / "results" / f"serve-{started:%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return report


if __name__ == "__main__":
    main()
