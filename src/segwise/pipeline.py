"""The whole flow in one call: load, clean, build features, segment, profile, name, save.

`segment` does what ``segwise run`` does and returns a `SegmentationResult`;
``result.save(dir)`` writes the outputs (atomically, see `segwise.outputs`) and
appends the run to ``dir/segwise.duckdb``. `load_run` reads a saved run back.
"""

from __future__ import annotations

import json
import platform
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segwise import __version__
from segwise.align import align_model
from segwise.data import CustomerTable, Transactions, load_customers, load_transactions
from segwise.drift import training_snapshot
from segwise.economics import actionability, segment_economics
from segwise.engine import Engine, get_engine
from segwise.errors import InputError
from segwise.features import FeatureTable, build_features
from segwise.model import ASSIGNMENT_COLUMNS, SegmentationModel
from segwise.outputs import commit_outputs, recover
from segwise.persist import atomic_write_bytes
from segwise.playbook import Playbook, load_playbook
from segwise.profile import Profiles
from segwise.report import REPORT_FILENAME, render_report
from segwise.segmenter import Segmenter
from segwise.stability import bootstrap_stability
from segwise.store import STORE_FILENAME, RunStore
from segwise.validate import validation_report

__all__ = ["segment", "SegmentationResult", "load_run", "OUTPUT_FILES", "write_table"]

#: Files every run writes into its output directory.
OUTPUT_FILES = (
    "assignments.parquet", "assignments.csv", "features.parquet", "profiles.json", "model.segwise", "run.json",
)

ProgressCallback = Callable[[str, str], None]


def _versions() -> dict[str, str]:
    import duckdb
    import ibis
    import scipy
    import sklearn

    return {
        "segwise": __version__, "python": platform.python_version(), "numpy": np.__version__,
        "pandas": pd.__version__, "pyarrow": pa.__version__, "scikit-learn": sklearn.__version__,
        "scipy": scipy.__version__, "duckdb": duckdb.__version__, "ibis": ibis.__version__,
    }


@dataclass
class SegmentationResult:
    """What a segmentation run produced.

    Attributes
    ----------
    assignments : DataFrame
        ``customer_id``, ``segment_id``, ``segment_name``, ``confidence`` per customer.
    profiles : Profiles
    features : FeatureTable
    model : SegmentationModel
    run : dict
        The run record written to ``run.json``.
    validation, economics, actionability : dict
        Quality of the segments (`segwise.validate.validation_report`), their
        economics and actionability (`segwise.economics`); also in ``run``.
    stability : dict or None
        Bootstrap stability (`segwise.stability`), when asked for.
    alignment : dict or None
        How the segments were matched to a previous model (`segwise.align`).
    """

    assignments: pd.DataFrame
    profiles: Profiles
    features: FeatureTable
    model: SegmentationModel
    run: dict[str, Any]
    paths: dict[str, str] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    stability: dict[str, Any] | None = None
    economics: dict[str, Any] | None = None
    actionability: dict[str, Any] | None = None
    alignment: dict[str, Any] | None = None

    @property
    def segmenter(self) -> Segmenter:
        return self.model.segmenter

    @property
    def n_segments(self) -> int:
        return self.model.segmenter.n_segments_

    def summary_table(self) -> pd.DataFrame:
        """Segments with name, size, share, revenue share and key traits."""
        return self.profiles.table()

    def save(self, out_dir: str | Path, *, store: bool = True, report: bool = True) -> dict[str, str]:
        """Write every output into ``out_dir`` and append the run to its store.

        Files are staged and moved into place together (see `segwise.outputs`); an
        interrupted save leaves the previous outputs intact. With ``report`` the
        HTML report (`segwise.report`) is built from the staged outputs and
        committed with them as ``report.html``.
        """
        out_dir = Path(out_dir)
        started = time.perf_counter()
        run = dict(self.run)
        run["outputs"] = (list(OUTPUT_FILES) + ([REPORT_FILENAME] if report else [])
                          + ([STORE_FILENAME] if store else []))
        model_hash: dict[str, str] = {}

        def write_model(path: Path) -> None:
            model_hash["sha256"] = self.model.save(path)

        def run_json() -> bytes:
            return json.dumps(_json_safe(run), indent=2, allow_nan=False).encode()

        def write_run(path: Path) -> None:
            run["model_sha256"] = model_hash.get("sha256")
            run["timings"]["outputs"] = round(time.perf_counter() - started, 3)
            path.write_bytes(run_json())

        def write_report(path: Path) -> None:
            report_started = time.perf_counter()
            path.write_text(render_report(path.parent), encoding="utf-8")
            # The report is built from the staged run.json, so its own time is added afterwards.
            run["timings"]["report"] = round(time.perf_counter() - report_started, 3)
            atomic_write_bytes(path.parent / "run.json", run_json())

        writers = {
            "assignments.parquet": lambda p: write_table(self.assignments, p),
            "assignments.csv": lambda p: write_table(self.assignments, p),
            "features.parquet": lambda p: write_table(self.features.frame.reset_index(), p),
            "profiles.json": lambda p: p.write_text(json.dumps(self.profiles.to_dict(), indent=2, allow_nan=False)),
            "model.segwise": write_model,
            "run.json": write_run,
        }
        if report:
            # Written after run.json: the report is built from the staged outputs alone.
            writers[REPORT_FILENAME] = write_report

        def append_to_store() -> None:
            if store:
                with RunStore(out_dir / STORE_FILENAME) as run_store:
                    run_store.append_run(_json_safe(run), self.assignments, model_hash.get("sha256"))

        self.paths = commit_outputs(out_dir, writers, last="run.json", before_commit=append_to_store)
        if store:
            self.paths[STORE_FILENAME] = str(out_dir / STORE_FILENAME)
        self.run = run
        return self.paths


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a DataFrame as Parquet or CSV, chosen by the file suffix."""
    path = Path(path)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if path.suffix.lower() in (".parquet", ".pq") or path.name.endswith(".parquet"):
        pq.write_table(table, path)
    elif path.suffix.lower() in (".csv", ".txt"):
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    else:
        raise InputError(f"{path}: unknown output format; use a .parquet or .csv file name")


def _json_safe(value: Any) -> Any:
    from segwise.profile import _clean_json

    return _clean_json(value)


class _Timer:
    def __init__(self, progress: ProgressCallback | None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str, label: str) -> Iterator[None]:
        if self.progress:
            self.progress(name, label)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)
            if self.progress:
                self.progress(name, "done")


def segment(
    data: Any = None,
    *,
    customers: Any = None,
    as_of: str | date | None = None,
    n_segments: int | str = "auto",
    method: str = "kmeans",
    features: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    weights: Mapping[str, float] | None = None,
    k_range: tuple[int, int] = (2, 12),
    names: Mapping[Any, str] | None = None,
    random_state: int | None = 0,
    preprocessing: Mapping[str, Any] | None = None,
    method_params: Mapping[str, Any] | None = None,
    load_options: Mapping[str, Any] | None = None,
    customer_options: Mapping[str, Any] | None = None,
    engine: Engine | str | Any = None,
    progress: ProgressCallback | None = None,
    playbook: str | Path | Playbook | None = None,
    stability: int | None = None,
    align_to: str | Path | SegmentationModel | None = None,
    n_jobs: int | None = None,
) -> SegmentationResult:
    """Segment customers end to end, as ``segwise run`` does.

    Parameters
    ----------
    data : path, DataFrame, Spark DataFrame, Transactions or None
        The transaction log (anything `segwise.load_transactions` reads, or an
        already loaded `Transactions`). May be None when ``customers`` is given:
        customers are then segmented on their attributes alone. A Spark DataFrame
        runs on the Spark engine of its session.
    customers : path, DataFrame, CustomerTable or None
        Customer attribute table (one row per customer).
    as_of : str or date, optional
        Observation date (default: the day after the last transaction).
    n_segments : int, "auto" or a range ("4..8", (4, 8): auto within it)
    method : str
        Segmentation method (see `segwise.cluster.METHODS`).
    features, exclude : list of str, optional
        Columns or feature families that define (or must not define) the segments.
    weights : dict, optional
        Column or family name to weight.
    k_range : tuple
        Range of the automatic choice of the number of segments.
    names : dict, optional
        Segment id or generated name to a name of your own.
    random_state : int
        Seed (recorded with the run).
    preprocessing, method_params : dict, optional
        Extra `Preprocessor` / method parameters.
    load_options, customer_options : dict, optional
        Keyword arguments for `load_transactions` / `load_customers` (column
        names, date format, delimiter, encoding ...).
    engine : DuckDBEngine, SparkEngine, "duckdb", "spark" or a SparkSession, optional
        Where loading, features, preparation and clustering run (default: a new
        DuckDB). On Spark, ``method`` is one of ``kmeans``, ``bisecting_kmeans``,
        ``gmm`` (MLlib) and the model file is the same as the local engine's.
    progress : callable, optional
        Called as ``progress(stage, label)`` when a stage starts and
        ``progress(stage, "done")`` when it ends.
    playbook : path or Playbook, optional
        A playbook (`segwise.playbook`), checked against the fitted segments and
        stored in the model.
    stability : int, optional
        Number of bootstrap refits ``B`` for the stability of the segments
        (`segwise.stability.bootstrap_stability`); not measured when None.
    align_to : path or SegmentationModel, optional
        A previous model: matching segments keep its ids and names
        (`segwise.align`).
    n_jobs : int, optional
        Worker processes for the bootstrap refits (-1: one per core).

    Returns
    -------
    SegmentationResult
    """
    if data is None and customers is None:
        raise InputError("nothing to segment: give a transaction log, a customer table (--customers), or both")
    if playbook is not None and not isinstance(playbook, Playbook):
        playbook = load_playbook(playbook)
    timer = _Timer(progress)
    if engine is None and type(data).__module__.startswith("pyspark"):
        engine = data.sparkSession
    engine = get_engine(engine)
    transactions: Transactions | None = None
    customer_table: CustomerTable | None = None
    with timer.stage("load", "Loading and cleaning data"):
        if isinstance(data, Transactions):
            transactions = data
        elif data is not None:
            transactions = load_transactions(data, engine=engine, **dict(load_options or {}))
        if isinstance(customers, CustomerTable):
            customer_table = customers
        elif customers is not None:
            customer_table = load_customers(customers, engine=engine, **dict(customer_options or {}))
    with timer.stage("features", "Building customer features"):
        feature_table = build_features(transactions, customers=customer_table, as_of=as_of)
    if len(feature_table.frame) < 2:
        raise InputError(
            f"only {len(feature_table.frame)} customer(s) to segment: segmentation needs at least 2 "
            "(and a few dozen to be meaningful)"
        )
    with timer.stage("segment", "Preparing features and choosing segments"):
        segmenter = Segmenter(
            method=method, n_segments=n_segments, k_range=tuple(k_range), features=features, exclude=exclude,
            weights=dict(weights) if weights else None, preprocessing=dict(preprocessing) if preprocessing else None,
            method_params=dict(method_params) if method_params else None, names=dict(names) if names else None,
            random_state=random_state,
        )
        if engine.name == "spark":
            from segwise.spark.segment import fit_segmenter

            segmenter = fit_segmenter(engine, feature_table, segmenter)
        else:
            segmenter = segmenter.fit(feature_table)
    source = transactions.source if transactions is not None else customer_table.source
    model = SegmentationModel.from_fit(segmenter, feature_table.spec, as_of=feature_table.as_of, source=source,
                                       n_customers=len(feature_table.frame))
    alignment = None
    if align_to is not None:
        with timer.stage("align", "Matching segments to the previous model"):
            previous = align_to if isinstance(align_to, SegmentationModel) else SegmentationModel.load(align_to)
            alignment = align_model(model, previous, feature_table).to_dict()
    with timer.stage("assign", "Assigning and profiling customers"):
        confidence = segmenter.predict_confidence(feature_table.frame)
        ids = segmenter.labels_
        assignments = pd.DataFrame({
            "customer_id": feature_table.frame.index.astype(str),
            "segment_id": ids.astype(np.int64),
            "segment_name": pd.Series(segmenter.segment_names_, dtype=object).reindex(ids).to_numpy(),
            "confidence": confidence,
        })[ASSIGNMENT_COLUMNS]
    checks = _business_checks(segmenter, feature_table, transactions, timer, random_state)
    model.training_snapshot = training_snapshot(
        feature_table.frame, segmenter.feature_columns_,
        {p.segment_id: p.share_customers for p in segmenter.profiles_},
        as_of=str(feature_table.as_of) if feature_table.as_of else None,
    )
    stability_record = None
    if stability is not None:
        with timer.stage("stability", f"Bootstrap stability ({stability} refits)"):
            stability_record = bootstrap_stability(
                segmenter, feature_table, n_bootstrap=stability, random_state=random_state, n_jobs=n_jobs,
            ).to_dict()
    if playbook is not None:
        # bound after alignment, which may renumber and rename the segments
        model.playbook = playbook.bind_model(model)
    run = _run_record(
        model, transactions, customer_table, feature_table, segmenter, timer.timings,
        n_segments=n_segments, k_range=k_range, random_state=random_state, method_params=method_params,
    )
    run.update(checks, stability=stability_record, alignment=alignment)
    if model.playbook is not None:
        run["playbook"] = {"source": model.playbook.source,
                           "segments": [p.segment_id for p in model.playbook.segments]}
    return SegmentationResult(
        assignments=assignments, profiles=segmenter.profiles_, features=feature_table, model=model, run=run,
        stability=stability_record, alignment=alignment, **checks,
    )


def _business_checks(segmenter, feature_table, transactions, timer, random_state) -> dict[str, Any]:
    """Validation, economics and actionability of a fitted segmentation."""
    with timer.stage("validate", "Validating segments"):
        prepared = segmenter.preprocessor_.transform(feature_table.frame)
        validation = validation_report(prepared, segmenter.labels_, clusterer=segmenter.clusterer_,
                                       random_state=random_state)
        economics = segment_economics(
            feature_table.frame, segmenter.labels_, segmenter.segment_names_, transactions=transactions,
            as_of=feature_table.as_of,
        )
        checks = actionability(segmenter.profiles_, segmenter.feature_columns_)
    return {"validation": validation, "economics": economics, "actionability": checks}


def _run_record(model, transactions, customer_table, feature_table, segmenter, timings, *, n_segments, k_range,
                random_state, method_params=None) -> dict[str, Any]:
    cleaning = dict(transactions.cleaning.rules) if transactions is not None else {}
    cleaning.update(feature_table.excluded)
    described = [c for c in segmenter.profile_columns_ if c not in segmenter.feature_columns_]
    selection = segmenter.selection_.to_dict() if segmenter.selection_ is not None else None
    segments = [
        {
            "segment_id": p.segment_id, "segment_name": p.name, "customers": p.n_customers,
            "share_customers": p.share_customers, "share_revenue": p.share_revenue,
            "key_traits": [t["text"] for t in p.traits[:3]],
        }
        for p in segmenter.profiles_
    ]
    return {
        "run_id": uuid.uuid4().hex,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "segwise_version": __version__,
        "model_id": model.metadata["model_id"],
        "source": transactions.source if transactions is not None else customer_table.source,
        "input": {
            "transactions": transactions.summary() if transactions is not None else None,
            "customers": customer_table.summary() if customer_table is not None else None,
        },
        "as_of": str(feature_table.as_of) if feature_table.as_of else None,
        "cleaning": cleaning,
        "n_customers": int(len(feature_table.frame)),
        "features": {
            "columns": list(feature_table.frame.columns),
            "clustered_on": list(segmenter.feature_columns_),
            "described_by": described,
            "notes": list(feature_table.notes) + list(segmenter.notes_),
        },
        "preparation": segmenter.preprocessor_.report_,
        "prepared_columns": [str(c) for c in segmenter.preprocessor_.get_feature_names_out()],
        "method": segmenter.clusterer_.method_name,
        "parameters": {"n_segments": n_segments, "k_range": list(k_range), "random_state": random_state,
                       "method_params": dict(method_params or {})},
        "n_segments": int(segmenter.n_segments_),
        "selection": selection,
        "method_details": segmenter.method_details_,
        "metrics": segmenter.metrics_,
        "segments": segments,
        "timings": dict(timings),
        "versions": _versions(),
    }


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """Read a run directory back: ``run.json``, assignments, profiles and the model.

    Interrupted writes are recovered first (see `segwise.outputs.recover`).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    recover(run_dir)
    run_file = run_dir / "run.json"
    if not run_file.exists():
        raise InputError(f"{run_dir}: not a segwise run directory (no run.json); run `segwise run` first")
    run = json.loads(run_file.read_text())
    return {
        "run": run,
        "assignments": pq.read_table(run_dir / "assignments.parquet").to_pandas(),
        "profiles": Profiles.from_dict(json.loads((run_dir / "profiles.json").read_text())),
        "model": SegmentationModel.load(run_dir / "model.segwise"),
    }
