"""A federated run on one machine: split a log into silos, start them, coordinate.

`simulate` plays every data holder (so it sees all the data, as a test harness
must): it splits the customers of one transaction log into ``n_silos`` silos, writes
each silo's lines to its own directory, starts one ``segwise federated silo`` process
per silo on 127.0.0.1, runs the coordinator against them over HTTP, and collects
what each silo wrote locally into one assignments table.

Splits:

``random``
    every customer to a silo chosen uniformly at random (IID silos);
``region``
    by the ``region`` column of the customer table (regions to silos in turn):
    the way regional subsidiaries hold data;
``skewed``
    non-IID: a k-means with one group per silo on the customers' log-scaled RFM
    features, and each group's customers go 80% to their own silo and 20% to the
    others at random, so each silo is dominated by different kinds of customers.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segwise.errors import InputError
from segwise.federated.coordinator import FederatedKMeans, FederatedResult, check_settings
from segwise.federated.transport import HttpSilo, WireLog

__all__ = ["simulate", "split_customers", "SiloProcess", "start_silo", "SPLITS", "SimulationResult"]

SPLITS = ("random", "region", "skewed")

#: A silo process should be listening well within this (imports take a few seconds).
STARTUP_SECONDS = 180.0


@dataclass
class SiloProcess:
    """A ``segwise federated silo`` process started by `start_silo`."""

    name: str
    url: str
    process: subprocess.Popen
    out_dir: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def start_silo(data: str | Path, *, name: str, out_dir: str | Path, noise_seed: int | None = None,
               extra_args: list[str] | None = None) -> SiloProcess:
    """Start ``segwise federated silo DATA --port 0`` and wait until it listens."""
    out_dir = Path(out_dir)
    argv = [sys.executable, "-c", "from segwise.cli import main; main()", "federated", "silo", str(data),
            "--port", "0", "--name", name, "--out", str(out_dir)]
    if noise_seed is not None:
        argv += ["--noise-seed", str(noise_seed)]
    argv += list(extra_args or [])
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               text=True, env=env)
    deadline = time.monotonic() + STARTUP_SECONDS
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if "http://" in line or not line:
                break
        if process.poll() is not None:
            break
    if "http://" not in line:
        process.kill()
        error = process.stderr.read() if process.stderr else ""
        process.wait()
        raise InputError(f"silo {name} did not start: {' '.join(error.split())[-500:] or 'no output'}")
    url = line[line.index("http://"):].split()[0]
    return SiloProcess(name=name, url=url, process=process, out_dir=out_dir)


def split_customers(transactions, n_silos: int, split: str, *, seed: int = 0, customers=None) -> pd.Series:
    """Silo number (0..n_silos-1) of every customer of ``transactions``, by ``split``."""
    from segwise.engines import quote_identifier as q

    if split not in SPLITS:
        raise InputError(f"--split must be one of {', '.join(SPLITS)}; got {split!r}")
    if not isinstance(n_silos, int) or n_silos < 1:
        raise InputError(f"--silos must be a whole number of at least 1; got {n_silos!r}")
    ids = [r[0] for r in transactions.engine.execute(
        f"SELECT DISTINCT customer_id FROM {q(transactions.table_name)} ORDER BY 1")]
    index = pd.Index(ids, name="customer_id")
    rng = np.random.default_rng(seed)
    if split == "random":
        return pd.Series(rng.integers(0, n_silos, len(index)), index=index)
    if split == "region":
        if customers is None:
            raise InputError("--split region needs the customer table with a region column (--customers FILE)")
        columns = {c.lower(): c for c in customers.frame.columns}
        if "region" not in columns:
            raise InputError(
                f"{customers.source}: --split region needs a 'region' column in the customer table; "
                f"it has {', '.join(map(str, customers.frame.columns))}"
            )
        region = customers.frame[columns["region"]].astype("object").reindex(index).fillna("unknown").astype(str)
        levels = sorted(region.unique())
        if len(levels) < n_silos:
            raise InputError(
                f"--split region: the customer table has {len(levels)} regions, fewer than --silos {n_silos}"
            )
        return region.map({lv: i % n_silos for i, lv in enumerate(levels)}).astype(np.int64)
    from sklearn.cluster import KMeans

    from segwise.features import build_features

    rfm = build_features(transactions, families=["rfm"]).frame.reindex(index)
    values = np.log1p(np.clip(rfm.fillna(0.0).to_numpy(dtype=np.float64), 0, None))
    values = (values - values.mean(axis=0)) / np.where(values.std(axis=0) > 0, values.std(axis=0), 1.0)
    groups = KMeans(n_clusters=n_silos, n_init=2, random_state=seed).fit_predict(values)
    other = rng.integers(0, n_silos, len(index))
    stay = rng.uniform(size=len(index)) < 0.8
    return pd.Series(np.where(stay, groups, other), index=index)


def _write_silo_log(transactions, customer_ids: list[str], path: Path) -> int:
    """The silo's cleaned lines, with column names the loader recognises."""
    from segwise.engines import quote_identifier as q

    table = transactions.engine.fetch_arrow(f"SELECT * FROM {q(transactions.table_name)} ORDER BY customer_id, ts")
    mask = pc.is_in(table["customer_id"], value_set=pa.array(customer_ids, type=table["customer_id"].type))
    table = table.filter(mask)
    keep = {"customer_id": "customer_id", "order_id": "order_id", "ts": "ordered_at", "amount": "amount",
            "category": "category", "channel": "channel", "discount": "discount"}
    columns, names = [], []
    for source, target in keep.items():
        if source in table.column_names and not (source == "order_id" and table[source].null_count == len(table)):
            columns.append(table[source])
            names.append(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, names=names), path)
    return table.num_rows


@dataclass
class SimulationResult:
    """What `simulate` wrote and measured."""

    result: FederatedResult
    assignments: pd.DataFrame
    paths: dict[str, str]
    silo_sizes: dict[str, int] = field(default_factory=dict)


def simulate(
    data: Any,
    *,
    out_dir: str | Path,
    n_silos: int = 4,
    split: str = "random",
    customers: Any = None,
    seed: int = 0,
    load_options: dict[str, Any] | None = None,
    on_round: Callable[[str], None] | None = None,
    on_started: Callable[[list[SiloProcess]], None] | None = None,
    **federated: Any,
) -> SimulationResult:
    """Split ``data`` into silos, run federated k-means over HTTP, write the outputs.

    Writes ``out_dir/assignments.parquet`` (customer_id, segment_id, segment_name,
    confidence, silo), ``out_dir/model.segwise``, ``out_dir/wire_log.jsonl`` (every
    message that crossed the wire) and ``out_dir/federated.json`` (the run record),
    moved into place together; each silo's own files stay under ``out_dir/silos/``.

    Parameters
    ----------
    data : path or frame
        The transaction log of all silos (anything `segwise.load_transactions` reads).
    out_dir : path
    n_silos : int
    split : {"random", "region", "skewed"}
    customers : path or frame, optional
        Customer table (needed by ``split="region"``).
    seed : int
        Seed of the split, the coordinator and the silos' noise.
    load_options : dict, optional
        Keyword arguments of `load_transactions`.
    on_round, on_started : callable, optional
        Called with each round name / with the started silo processes.
    **federated
        Parameters of `FederatedKMeans` (``n_segments``, ``dp_epsilon``,
        ``secure_aggregation``, ``as_of``, ...).
    """
    from segwise.data import load_customers, load_transactions
    from segwise.outputs import check_output_dir, commit_outputs
    from segwise.runs import write_table

    out_dir = check_output_dir(out_dir)
    check_settings(**federated)
    if split not in SPLITS:
        raise InputError(f"--split must be one of {', '.join(SPLITS)}; got {split!r}")
    if split == "region" and customers is None:
        raise InputError("--split region needs the customer table with a region column (--customers FILE)")
    if federated.get("secure_aggregation") and n_silos < 2:
        raise InputError("secure aggregation needs at least two silos (--silos 2 or more)")
    transactions = load_transactions(data, **dict(load_options or {}))
    customer_table = None
    if customers is not None:
        options = {"customer_id_col": (load_options or {}).get("customer_id_col")}
        customer_table = load_customers(customers, engine=transactions.engine, **options)
    silo_of = split_customers(transactions, n_silos, split, seed=seed, customers=customer_table)
    silos_dir = out_dir / "silos"
    names = [f"silo-{i + 1}" for i in range(n_silos)]
    sizes = {}
    for i, name in enumerate(names):
        members = [str(c) for c in silo_of.index[silo_of.to_numpy() == i]]
        if not members:
            raise InputError(f"the {split} split left {name} without customers; use fewer --silos")
        sizes[name] = len(members)
        _write_silo_log(transactions, members, silos_dir / name / "orders.parquet")
    out_dir.mkdir(parents=True, exist_ok=True)
    partial_log = out_dir / f".wire_log-{os.getpid()}.jsonl"
    wire_log = WireLog(partial_log)
    timeout = float(federated.pop("timeout", 300.0))
    processes: list[SiloProcess] = []
    try:
        for i, name in enumerate(names):
            processes.append(start_silo(silos_dir / name / "orders.parquet", name=name, out_dir=silos_dir / name,
                                        noise_seed=seed * 1000 + i if federated.get("dp_epsilon") else None))
        if on_started is not None:
            on_started(processes)
        clients = [HttpSilo(p.url, wire_log, name=p.name, timeout=timeout) for p in processes]
        result = FederatedKMeans(clients, random_state=seed, on_round=on_round, **federated).fit()
    except BaseException:
        partial_log.unlink(missing_ok=True)
        raise
    finally:
        for process in processes:
            process.stop()
    frames = []
    for name in result.record["silos_used"]:
        frames.append(pq.read_table(silos_dir / name / "assignments.parquet").to_pandas())
    assignments = pd.concat(frames, ignore_index=True)
    record = {**result.record, "split": split, "n_silos": n_silos, "silo_sizes": sizes, "seed": seed}

    def move_log(path: Path) -> None:
        os.replace(partial_log, path)

    paths = commit_outputs(out_dir, {
        "assignments.parquet": lambda p: write_table(assignments, p),
        "model.segwise": lambda p: result.model.save(p),
        "wire_log.jsonl": move_log,
        "federated.json": lambda p: p.write_text(json.dumps(_json_safe(record), indent=1, allow_nan=False)),
    }, last="federated.json")
    result.record = record
    return SimulationResult(result=result, assignments=assignments, paths=paths, silo_sizes=sizes)


def _json_safe(value: Any) -> Any:
    from segwise.profile import _clean_json

    return _clean_json(value)
