"""The flow, nothing more: load -> features -> segmenter -> validation.

`run_flow` loads and cleans the data, builds the customer features, fits a
`Segmenter`, assigns and profiles every customer and measures the segments
(validation, economics, actionability, and stability or alignment when asked for).
The order lines are needed only up to the features: the one later measure that reads
them (the economics' retention flags) is computed with the features, and a log the
flow loaded itself is then dropped from its engine (at 10M lines, several hundred
MiB of DuckDB memory that the fitting would otherwise hold on to).
Every stage is timed in wall seconds (``timings``) and in CPU seconds of the
process, all threads (``cpu_timings``).
It returns a `Segmentation`; writing it to a run directory, binding a playbook and
reading a run back belong to the act side (`segwise.runs`: `segwise.segment` there
is this flow plus those). Nothing here imports report, serve, export, experiment,
playbook or the run store (an import-linter contract in pyproject.toml checks it).
"""

from __future__ import annotations

import platform
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from segwise._version import __version__
from segwise.align import align_model
from segwise.data import CustomerTable, Transactions, load_customers, load_transactions
from segwise.drift import training_snapshot
from segwise.economics import actionability, retention_flags, segment_economics
from segwise.engines import Engine, get_engine
from segwise.errors import InputError
from segwise.features import FeatureTable, build_features
from segwise.prepare import constant_columns
from segwise.model import ASSIGNMENT_COLUMNS, SegmentationModel
from segwise.profile import Profiles
from segwise.segmenter import Segmenter
from segwise.stability import bootstrap_stability
from segwise.validate import validation_report

__all__ = ["run_flow", "Segmentation"]

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
class Segmentation:
    """What the flow produced (`segwise.runs.SegmentationResult` adds saving).

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


class _Timer:
    def __init__(self, progress: ProgressCallback | None) -> None:
        self.timings: dict[str, float] = {}
        self.cpu_timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str, label: str) -> Iterator[None]:
        if self.progress:
            self.progress(name, label)
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)
            # CPU of every thread (DuckDB's, BLAS's): beside the wall time it says
            # whether a stage waited (load on the machine) or used both cores.
            self.cpu_timings[name] = round(time.process_time() - cpu_start, 3)
            if self.progress:
                self.progress(name, "done")


def run_flow(
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
    stability: int | None = None,
    align_to: str | Path | SegmentationModel | None = None,
    n_jobs: int | None = None,
    value_options: dict[str, Any] | None = None,
    order_by: str | None = None,
) -> Segmentation:
    """Segment customers end to end, as ``segwise run`` does, without writing anything.

    Parameters
    ----------
    data : path, DataFrame, Spark DataFrame, Transactions, FeatureTable or None
        The transaction log (anything `segwise.load_transactions` reads, or an
        already loaded `Transactions`). May be None when ``customers`` is given:
        customers are then segmented on their attributes alone. A Spark DataFrame
        runs on the Spark engine of its session. A `FeatureTable` already built
        (`segwise.build_features`) is segmented as it is: there is no load or
        features stage, and no retention proxy in the economics (it needs the log).
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
    stability : int, optional
        Number of bootstrap refits ``B`` for the stability of the segments
        (`segwise.stability.bootstrap_stability`); not measured when None.
    align_to : path or SegmentationModel, optional
        A previous model: matching segments keep its ids and names
        (`segwise.align`).
    n_jobs : int, optional
        Worker processes for the bootstrap refits (-1: one per core).
    value_options : dict, optional
        ``margin`` and ``discount_rate`` of the value family's ``clv_365d``.
    order_by : str, optional
        Column whose segment mean numbers the segments (e.g. ``"clv_365d"``).

    Returns
    -------
    Segmentation
    """
    if data is None and customers is None:
        raise InputError("nothing to segment: give a transaction log, a customer table (--customers), or both")
    if isinstance(data, FeatureTable) and customers is not None:
        raise InputError("a feature table is segmented as it is: build it with the customer table "
                         "(build_features(transactions, customers=...)) instead of passing customers here")
    timer = _Timer(progress)
    if engine is None and type(data).__module__.startswith("pyspark"):
        engine = data.sparkSession
    if engine in (None, "postgres") and isinstance(data, str):
        from segwise.engines.postgres_url import is_postgres_url

        if is_postgres_url(data):  # the work runs in the database
            from segwise.engines.postgres import PostgresEngine

            engine = PostgresEngine(data)
    engine = get_engine(engine)
    transactions: Transactions | None = None
    customer_table: CustomerTable | None = None
    retained = None
    if isinstance(data, FeatureTable):
        feature_table = data
    else:
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
            feature_table = build_features(transactions, customers=customer_table, as_of=as_of,
                                           **{k: v for k, v in (value_options or {}).items() if v is not None})
            if transactions is not None and feature_table.as_of is not None:
                retained = retention_flags(transactions, feature_table.as_of)
                if not isinstance(data, Transactions):
                    # Nothing after this reads the order lines; a log the caller loaded is theirs to keep.
                    transactions.engine.drop(transactions.table_name)
    source = _source(transactions, customer_table)
    if len(feature_table.frame) < 2:
        raise InputError(
            f"{source}: only {len(feature_table.frame)} customer(s) to segment: segmentation needs at least 2 "
            "(and a few dozen to be meaningful); give a log of more customers, or check that the customer id "
            "column is the right one (--customer-id-col NAME)"
        )
    numeric = feature_table.frame.select_dtypes("number")
    if len(numeric.columns) and len(feature_table.frame) >= 2 and constant_columns(numeric).all() \
            and features is None:
        raise InputError(
            f"{source}: all {len(feature_table.frame)} customers have exactly the same features (the same number of "
            "orders, spend and dates): there is nothing to tell them apart; check that this is the real "
            "purchase log (not a template or a test export) and that --customer-id-col names the customer"
        )
    with timer.stage("segment", "Preparing features and choosing segments"):
        segmenter = Segmenter(
            method=method, n_segments=n_segments, k_range=tuple(k_range), features=features, exclude=exclude,
            weights=dict(weights) if weights else None, preprocessing=dict(preprocessing) if preprocessing else None,
            method_params=dict(method_params) if method_params else None, names=dict(names) if names else None,
            random_state=random_state, order_by=order_by,
        )
        try:
            segmenter = segmenter.fit(feature_table, engine=engine)
        except InputError as exc:
            # Name the data the problem is in (the segmenter sees only features).
            if str(exc).startswith(f"{source}:"):
                raise
            raise InputError(f"{source}: {exc}") from None
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
    checks = _business_checks(segmenter, feature_table, retained, timer, random_state)
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
    run = _run_record(
        model, transactions, customer_table, feature_table, segmenter, timer,
        n_segments=n_segments, k_range=k_range, random_state=random_state, method_params=method_params,
    )
    run.update(checks, stability=stability_record, alignment=alignment)
    return Segmentation(
        assignments=assignments, profiles=segmenter.profiles_, features=feature_table, model=model, run=run,
        stability=stability_record, alignment=alignment, **checks,
    )


def _source(transactions: Transactions | None, customer_table: CustomerTable | None) -> str:
    """Where the customers came from, for messages and run.json."""
    if transactions is not None:
        return transactions.source
    if customer_table is not None:
        return customer_table.source
    return "feature table"


def _business_checks(segmenter, feature_table, retained, timer, random_state) -> dict[str, Any]:
    """Validation, economics and actionability of a fitted segmentation.

    ``retained`` holds the retention flags computed from the log with the features
    (`segwise.economics.retention_flags`), or None without a log.
    """
    with timer.stage("validate", "Validating segments"):
        prepared = segmenter.preprocessor_.transform(feature_table.frame)
        validation = validation_report(prepared, segmenter.labels_, clusterer=segmenter.clusterer_,
                                       random_state=random_state)
        economics = segment_economics(
            feature_table.frame, segmenter.labels_, segmenter.segment_names_, retained=retained,
            as_of=feature_table.as_of,
        )
        checks = actionability(segmenter.profiles_, segmenter.feature_columns_)
    return {"validation": validation, "economics": economics, "actionability": checks}


def _run_record(model, transactions, customer_table, feature_table, segmenter, timer, *, n_segments, k_range,
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
        "source": _source(transactions, customer_table),
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
            "models": dict(feature_table.models),
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
        "timings": dict(timer.timings),
        "cpu_timings": dict(timer.cpu_timings),
        "versions": _versions(),
    }
