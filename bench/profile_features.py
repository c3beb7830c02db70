"""``python -m bench.profile_features ORDERS [OUT]``: where the time of ``segwise features`` goes.

Runs what ``segwise features ORDERS --out OUT`` runs (load and clean, build the
features, write Parquet) in this process, with every statement sent to DuckDB
timed and attributed to the function of segwise that sent it (the feature family,
the loader, the build), in wall seconds and in CPU seconds of the process (all of
DuckDB's threads: under load from other processes the CPU seconds move less than
the wall seconds), and the statements that raised the process's peak RSS. Prints
one line per statement group and per stage, as JSON at the end. For development: the statements depend on the code measured, so the
attribution reads the call stack rather than naming known steps.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from pathlib import Path

import duckdb


def _caller() -> str:
    """The innermost segwise frames outside the engine module: who sent the statement."""
    chain = []
    for frame in reversed(traceback.extract_stack()[:-2]):
        name = frame.filename
        if "segwise" in name and "/engines/duckdb.py" not in name and "profile_features" not in name:
            chain.append(f"{Path(name).name}:{frame.name}:{frame.lineno}")
            if len(chain) == 3:
                break
    return " < ".join(chain) or "?"


def _peak_rss_mib() -> float | None:
    """The process's peak resident memory so far (Linux ``VmHWM``), None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    usage = __doc__.strip().splitlines()[0].replace("``", "")
    if args[:1] in (["-h"], ["--help"]):
        print(usage)
        return 0
    if not args or len(args) > 2:
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    orders = args[0]
    out = args[1] if len(args) > 1 else str(Path(tempfile.mkdtemp()) / "features.parquet")
    started = time.perf_counter()
    from segwise.data import load_transactions
    from segwise.engines.duckdb import DuckDBEngine
    from segwise.features import build_features
    from segwise.cli.files import write_atomic_table

    imported = time.perf_counter()
    imported_cpu = time.process_time()  # since the interpreter started
    from segwise.features import base as feature_base

    from segwise.features.plan import FeaturePlan

    spent: dict[str, float] = defaultdict(float)
    spent_cpu: dict[str, float] = defaultdict(float)
    # The process's peak RSS (VmHWM) after each statement: the statement that raised it
    # last holds the peak of the build.
    peak_after: dict[str, float] = {}
    calls: dict[str, int] = defaultdict(int)
    state: dict = {"depth": 0, "family": None}
    # Who a stored table belongs to: a stage to the family that asked for it (or to the
    # plan, for an aggregation it merged), a family's result to that family. The plan
    # stores them after every family has built its expression, so the call stack alone
    # names only the plan.
    stage_owner: dict[str, str] = {}
    output_owner: dict = {}

    def _label(expr) -> str:
        import ibis.expr.operations as ops

        node = expr.op()
        if isinstance(node, ops.Aggregate):
            return f"aggregate by {', '.join(node.groups)}, {len(node.metrics)} columns"
        windows = len(list(node.find(ops.WindowFunction)))
        joins = len(list(node.find(ops.JoinChain)))
        return f"{windows} windows, {joins} joins"

    def owner(method_name, a) -> str:
        if method_name != "materialize" or not a:
            return ""
        expr, name = a[0], a[1] if len(a) > 1 else None
        if isinstance(expr, str):  # SQL text (the loader's cleaning)
            return ""
        if name in stage_owner:
            return f" [stage of {stage_owner[name]}: {_label(expr)}]"
        family = output_owner.get(expr.op())
        return f" [result of {family}: {_label(expr)}]" if family else ""

    def timed(method):
        def wrapper(self, *a, **k):
            # Only the outermost call counts (materialize runs execute).
            state["depth"] += 1
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return method(self, *a, **k)
            finally:
                state["depth"] -= 1
                if state["depth"] == 0:
                    key = f"{method.__name__} <- {_caller()}{owner(method.__name__, a)}"
                    spent[key] += time.perf_counter() - t0
                    spent_cpu[key] += time.process_time() - c0
                    peak = _peak_rss_mib()
                    if peak is not None and peak > max(peak_after.values(), default=0.0):
                        peak_after[key] = peak
                    calls[key] += 1
        return wrapper

    def in_family(name, compute):
        # The stages a family asks for while it builds its expression are its own.
        def wrapper(ctx):
            state["family"] = name
            try:
                return compute(ctx)
            finally:
                state["family"] = "the plan (merged)"
        return wrapper

    for name, family in list(feature_base.FAMILIES.items()):
        feature_base.FAMILIES[name] = dataclasses.replace(family, compute=in_family(name, family.compute))

    plan_stage, plan_merge = FeaturePlan.stage, FeaturePlan.merge

    def stage(self, expr):
        table = plan_stage(self, expr)
        stage_owner[table.get_name()] = state["family"] or "the build (orders table)"
        return table

    def merge(self, outputs):
        merged = plan_merge(self, outputs)
        output_owner.update({expr.op(): family for family, expr in merged.items()})
        return merged

    FeaturePlan.stage, FeaturePlan.merge = stage, merge
    for name in ("execute", "fetch_df", "fetch_arrow", "materialize"):
        if hasattr(DuckDBEngine, name):
            setattr(DuckDBEngine, name, timed(getattr(DuckDBEngine, name)))
    stages = {"imports": imported - started}
    stages_cpu = {"imports": imported_cpu}
    t0, c0 = time.perf_counter(), time.process_time()
    tx = load_transactions(orders)
    stages["load_and_clean"] = time.perf_counter() - t0
    stages_cpu["load_and_clean"] = time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    table = build_features(tx)
    state["family"] = None
    stages["build_features"] = time.perf_counter() - t0
    stages_cpu["build_features"] = time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    write_atomic_table(table.frame.reset_index(), Path(out))
    stages["write"] = time.perf_counter() - t0
    stages_cpu["write"] = time.process_time() - c0
    stages["total"] = time.perf_counter() - started
    stages_cpu["total"] = time.process_time()
    statements = sorted(spent.items(), key=lambda kv: -kv[1])
    print("  wall s     CPU s  calls")
    for key, seconds in statements:
        print(f"{seconds:8.2f}  {spent_cpu[key]:8.2f}  {calls[key]:4d} x  {key}")
    print("statements that raised the process's peak RSS (MiB after them):")
    for key, peak in peak_after.items():
        print(f"{peak:10,.0f}  {key}")
    for key, seconds in stages.items():
        print(f"{seconds:8.2f}  {stages_cpu[key]:8.2f}         stage {key}")
    print(json.dumps({"stages": stages, "stages_cpu": stages_cpu,
                      "statements": {k: {"s": v, "cpu_s": spent_cpu[k], "calls": calls[k]} for k, v in statements},
                      "peak_rss_mib_after": peak_after,
                      "loadavg": os.getloadavg(), "duckdb": duckdb.__version__}))
    return 0

if __name__ == "__main__":
    sys.exit(main())
