"""A segmentation run, on the act side: do it, save it into a run directory, read it back.

`segment` is the flow (`segwise.pipeline.run_flow`) plus what acts on its result: the
playbook is checked and bound to the model, and the `SegmentationResult` it returns can
`save` itself into a run directory: assignments, features, profiles, model, run.json,
the HTML report (`segwise.report`) and a row in the run store (`segwise.store`), all
committed together by the protocol of `segwise.outputs`, so that a run directory
never holds a half-written mixture. `load_run` reads a saved run back; `write_table`
writes one table as Parquet or CSV.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from segwise.errors import InputError
from segwise.model import SegmentationModel
from segwise.outputs import commit_outputs, recover, write_table
from segwise.persist import atomic_write_bytes
from segwise.pipeline import Segmentation, run_flow
from segwise.playbook import Playbook, load_playbook
from segwise.profile import Profiles
from segwise.report import REPORT_FILENAME
from segwise.report.build import render_run_files
from segwise.report.rundir import run_files_in_memory
from segwise.store import STORE_FILENAME, RunStore

__all__ = ["segment", "SegmentationResult", "load_run", "write_table", "OUTPUT_FILES"]

#: Files every run writes into its output directory.
OUTPUT_FILES = (
    "assignments.parquet", "assignments.csv", "features.parquet", "profiles.json", "model.segwise", "run.json",
)


def segment(data: Any = None, *, playbook: str | Path | Playbook | None = None, **options: Any) -> "SegmentationResult":
    """Segment customers end to end, as ``segwise run`` does; ``result.save(dir)`` writes the outputs.

    Parameters
    ----------
    data : path, DataFrame, Spark DataFrame, Transactions or None
        The transaction log (see `segwise.pipeline.run_flow`).
    playbook : path or Playbook, optional
        A playbook (`segwise.playbook`), checked against the fitted segments and
        stored in the model.
    **options
        Every other parameter of `segwise.pipeline.run_flow` (``customers``,
        ``as_of``, ``n_segments``, ``method``, ``engine``, ``stability``,
        ``align_to`` ...).

    Returns
    -------
    SegmentationResult
    """
    if playbook is not None and not isinstance(playbook, Playbook):
        playbook = load_playbook(playbook)  # before the work: a bad playbook fails fast
    flow = run_flow(data, **options)
    result = SegmentationResult(**{f.name: getattr(flow, f.name) for f in fields(flow)})
    if playbook is not None:
        # bound after alignment, which may renumber and rename the segments
        result.model.playbook = playbook.bind_model(result.model)
        result.run["playbook"] = {"source": result.model.playbook.source,
                                  "segments": [p.segment_id for p in result.model.playbook.segments]}
    return result


@dataclass
class SegmentationResult(Segmentation):
    """What a segmentation run produced (`segwise.pipeline.Segmentation`), and where it was saved.

    Attributes
    ----------
    paths : dict
        File name to path of every output, once `save` has run.
    """

    paths: dict[str, str] = field(default_factory=dict)

    def save(self, out_dir: str | Path, *, store: bool = True, report: bool = True) -> dict[str, str]:
        """Write every output into ``out_dir`` and append the run to its store.

        Files are staged and moved into place together (see `segwise.outputs`); an
        interrupted save leaves the previous outputs intact. With ``report`` the
        HTML report (`segwise.report`) is built from the staged outputs and
        committed with them as ``report.html``.
        """
        out_dir = Path(out_dir)
        started, cpu_started = time.perf_counter(), time.process_time()
        run = dict(self.run)
        run["outputs"] = (list(OUTPUT_FILES) + ([REPORT_FILENAME] if report else [])
                          + ([STORE_FILENAME] if store else []))
        model_hash: dict[str, str] = {}
        profiles_document = self.profiles.to_dict()

        def write_model(path: Path) -> None:
            model_hash["sha256"] = self.model.save(path)

        def run_json() -> bytes:
            return json.dumps(_json_safe(run), indent=2, allow_nan=False).encode()

        def write_run(path: Path) -> None:
            run["model_sha256"] = model_hash.get("sha256")
            run["timings"]["outputs"] = round(time.perf_counter() - started, 3)
            run.setdefault("cpu_timings", {})["outputs"] = round(time.process_time() - cpu_started, 3)
            path.write_bytes(run_json())

        def write_report(path: Path) -> None:
            report_started, report_cpu_started = time.perf_counter(), time.process_time()
            # From the objects just written, not the files read back: the same report, without
            # reading the assignments and features again.
            files = run_files_in_memory(path.parent, run=json.loads(run_json()), profiles=profiles_document,
                                        assignments=self.assignments, features=self.features.frame,
                                        model=self.model)
            path.write_text(render_run_files(files), encoding="utf-8")
            # The report is built from the staged run.json, so its own time is added afterwards.
            run["timings"]["report"] = round(time.perf_counter() - report_started, 3)
            run.setdefault("cpu_timings", {})["report"] = round(time.process_time() - report_cpu_started, 3)
            atomic_write_bytes(path.parent / "run.json", run_json())

        writers = {
            "assignments.parquet": lambda p: write_table(self.assignments, p),
            "assignments.csv": lambda p: write_table(self.assignments, p),
            "features.parquet": lambda p: write_table(self.features.frame.reset_index(), p),
            "profiles.json": lambda p: p.write_text(json.dumps(profiles_document, indent=2, allow_nan=False)),
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


def _json_safe(value: Any) -> Any:
    from segwise.profile import _clean_json

    return _clean_json(value)


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
