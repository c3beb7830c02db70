"""Reading a run directory for the report: the saved outputs, never a refit.

A run directory is what ``segwise run`` (`segwise.runs.SegmentationResult.save`)
writes: ``run.json``, ``profiles.json``, ``assignments.parquet``,
``features.parquet`` and ``model.segwise``. Tracking results written beside them
(``transitions.parquet`` and ``shares.parquet``, see `segwise.report.method_data`)
are read when present.

A run that is being saved already holds all of it in memory: `run_files_in_memory`
gives the report the same `RunFiles` without reading the files back (at 885,000
customers, reading the assignments and features again took about a second).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from segwise.errors import InputError, ModelError
from segwise.model import SegmentationModel
from segwise.profile import Profiles

__all__ = ["RunFiles", "read_run_dir", "run_files_in_memory", "REQUIRED_FILES"]

#: Files the report is built from.
REQUIRED_FILES = ("run.json", "profiles.json", "assignments.parquet", "features.parquet", "model.segwise")


@dataclass
class RunFiles:
    """The outputs of one run, as the report reads them.

    Attributes
    ----------
    path : Path
    run : dict
        ``run.json``.
    profiles : Profiles
    assignments : DataFrame
        ``customer_id`` (text), ``segment_id``, ``segment_name``, ``confidence``.
    features : DataFrame
        The customer feature table, row for row in the order of ``assignments``
        (indexed by customer id as text).
    model : SegmentationModel
    playbook : dict or None
        The model document's ``"playbook"`` (shape in `segwise.report.data`).
    transitions, shares : DataFrame or None
        Tracking tables found in the directory.
    """

    path: Path
    run: dict[str, Any]
    profiles: Profiles
    assignments: pd.DataFrame
    features: pd.DataFrame
    model: SegmentationModel
    playbook: dict[str, Any] | None = None
    transitions: pd.DataFrame | None = None
    shares: pd.DataFrame | None = None


def read_run_dir(run_dir: str | Path) -> RunFiles:
    """Read the outputs of a run for its report.

    Raises
    ------
    InputError
        When the directory is not a complete run directory.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory; give the --out directory of `segwise run`")
    missing = [name for name in REQUIRED_FILES if not (run_dir / name).exists()]
    if "run.json" in missing:
        raise InputError(f"{run_dir}: not a segwise run directory (no run.json); run `segwise run` first")
    if missing:
        raise InputError(
            f"{run_dir}: the report needs every output of `segwise run`; missing: {', '.join(missing)}; "
            "run `segwise run` again into this directory"
        )
    try:
        run = json.loads((run_dir / "run.json").read_text())
        profiles = Profiles.from_dict(json.loads((run_dir / "profiles.json").read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{run_dir}: run.json or profiles.json cannot be read ({exc}); run `segwise run` again") from None
    assignments = pq.read_table(run_dir / "assignments.parquet").to_pandas()
    assignments["customer_id"] = assignments["customer_id"].astype(str)
    features = _aligned_features(pq.read_table(run_dir / "features.parquet").to_pandas(), assignments, run_dir)
    model = SegmentationModel.load(run_dir / "model.segwise")
    return RunFiles(
        path=run_dir, run=run, profiles=profiles, assignments=assignments, features=features, model=model,
        playbook=_playbook(model, run_dir / "model.segwise"),
        transitions=_optional_table(run_dir / "transitions.parquet"),
        shares=_optional_table(run_dir / "shares.parquet"),
    )


def run_files_in_memory(run_dir: str | Path, *, run: dict[str, Any], profiles: dict[str, Any],
                        assignments: pd.DataFrame, features: pd.DataFrame, model: SegmentationModel) -> RunFiles:
    """The `RunFiles` of a run being saved into ``run_dir``, from the objects it is saved from.

    What `read_run_dir` would read back once the outputs are written, without reading
    them: the report of a run is the same either way.

    Parameters
    ----------
    run_dir : path
        Where the outputs are written (the report reads tracking tables from there
        when present, as `read_run_dir` does).
    run, profiles : dict
        The documents written as ``run.json`` and ``profiles.json`` (JSON-ready).
    assignments : DataFrame
        As written to ``assignments.parquet``.
    features : DataFrame
        The feature table indexed by customer id, as written to ``features.parquet``.
    model : SegmentationModel
        The model written to ``model.segwise``.
    """
    run_dir = Path(run_dir)
    if not pd.api.types.is_string_dtype(assignments["customer_id"]):
        assignments = assignments.assign(customer_id=assignments["customer_id"].astype(str))
    ids = features.index.astype(str)
    # A new index on the same column data: no copy of the feature values.
    frame = features.set_axis(pd.Index(ids.to_numpy(), name="customer_id"), axis=0)
    frame = _in_assignment_order(frame, assignments, run_dir)
    playbook = model.playbook.to_dict() if model.playbook is not None else None
    return RunFiles(
        path=run_dir, run=run, profiles=Profiles.from_dict(profiles), assignments=assignments, features=frame,
        model=model, playbook=playbook,
        transitions=_optional_table(run_dir / "transitions.parquet"),
        shares=_optional_table(run_dir / "shares.parquet"),
    )


def _aligned_features(frame: pd.DataFrame, assignments: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """The feature rows in the order of the assignments."""
    id_column = "customer_id" if "customer_id" in frame.columns else frame.columns[0]
    ids = frame[id_column].astype(str)
    frame = frame.drop(columns=[id_column])
    frame.index = pd.Index(ids.to_numpy(), name="customer_id")
    return _in_assignment_order(frame, assignments, run_dir)


def _in_assignment_order(frame: pd.DataFrame, assignments: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """``frame`` (indexed by customer id as text) with its rows in the order of the assignments."""
    wanted = assignments["customer_id"].to_numpy()
    if len(frame) == len(wanted) and np.array_equal(frame.index.to_numpy(), wanted):
        return frame
    if frame.index.has_duplicates or not assignments["customer_id"].isin(frame.index).all():
        raise InputError(
            f"{run_dir}: features.parquet and assignments.parquet do not describe the same customers; "
            "they come from different runs: run `segwise run` again into this directory"
        )
    return frame.loc[wanted]


def _playbook(model: SegmentationModel, path: Path) -> dict[str, Any] | None:
    """The playbook stored in the model document, if any."""
    playbook = getattr(model, "playbook", None)
    if playbook is not None:
        return playbook.to_dict() if hasattr(playbook, "to_dict") else dict(playbook)
    # The model was verified by `SegmentationModel.load` just before; only its JSON
    # document is read again here.
    try:
        with zipfile.ZipFile(path) as archive:
            document = json.loads(archive.read("model.json"))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: the model document cannot be read ({exc})") from None
    found = document.get("playbook")
    return dict(found) if found else None


def _optional_table(path: Path) -> pd.DataFrame | None:
    return pq.read_table(path).to_pandas() if path.exists() else None
