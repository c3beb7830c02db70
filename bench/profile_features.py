"""``python -m bench.profile_features ORDERS [OUT]``: where the time of ``segwise features`` goes.

Runs what ``segwise features ORDERS --out OUT`` runs (load and clean, build the
features, write Parquet) in this process, with every statement sent to DuckDB
timed and attributed to the function of segwise that sent it (the feature family,
the loader, the build). Prints one line per statement group and per stage, as JSON
at the end. For development: the statements depend on the code measured, so the
attribution reads the call stack rather than naming known steps.
"""

from __future__ import annotations

import dataclasses
import json
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


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    orders = args[0]
    out = args[1] if len(args) > 1 else str(Path(tempfile.mkdtemp()) / "features.parquet")
    started = time.perf_counter()
    from segwise.data import load_transactions
    from segwise.engines.duckdb import DuckDBEngine
    from segwise.features import build_features
    from segwise.cli.files import write_atomic_table

    imported = time.perf_counter()
    from segwise.features import base as feature_base

    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    state = {"depth": 0, "family": None}

    def timed(method):
        def wrapper(self, *a, **k):
            # Only the outermost call counts (materialize runs execute).
            state["depth"] += 1
            t0 = time.perf_counter()
            try:
                return method(self, *a, **k)
            finally:
                state["depth"] -= 1
                if state["depth"] == 0:
                    caller = _caller()
                    in_store = ":store:" in caller or ":stage:" in caller
                    family = f" [family {state['family']}]" if state["family"] and in_store else ""
                    key = f"{method.__name__} <- {caller}{family}"
                    spent[key] += time.perf_counter() - t0
                    calls[key] += 1
        return wrapper

    def in_family(name, compute):
        # A family's statements: those sent while it builds its expression, and the
        # build's store of its result that follows, until the next family starts.
        def wrapper(ctx):
            state["family"] = name
            return compute(ctx)
        return wrapper

    for name, family in list(feature_base.FAMILIES.items()):
        feature_base.FAMILIES[name] = dataclasses.replace(family, compute=in_family(name, family.compute))

    for name in ("execute", "fetch_df", "fetch_arrow", "materialize"):
        if hasattr(DuckDBEngine, name):
            setattr(DuckDBEngine, name, timed(getattr(DuckDBEngine, name)))
    stages = {"imports": imported - started}
    t0 = time.perf_counter()
    tx = load_transactions(orders)
    stages["load_and_clean"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = build_features(tx)
    state["family"] = None
    stages["build_features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_atomic_table(table.frame.reset_index(), Path(out))
    stages["write"] = time.perf_counter() - t0
    stages["total"] = time.perf_counter() - started
    statements = sorted(spent.items(), key=lambda kv: -kv[1])
    for key, seconds in statements:
        print(f"{seconds:8.2f} s  {calls[key]:4d} x  {key}")
    for key, seconds in stages.items():
        print(f"{seconds:8.2f} s  stage {key}")
    print(json.dumps({"stages": stages, "statements": {k: {"s": v, "calls": calls[k]} for k, v in statements},
                      "duckdb": duckdb.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
