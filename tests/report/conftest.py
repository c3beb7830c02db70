"""A real k-means run directory, and variants of it carrying the payloads of other methods."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import segwise
from segwise.persist import read_model_file, write_model_file


@dataclass
class SavedRun:
    """``segwise.segment(...)`` saved into ``path`` (with its report)."""

    path: Path
    result: Any


@pytest.fixture(scope="session")
def kmeans_run(tmp_path_factory) -> SavedRun:
    """1,500 synthetic customers segmented by k-means (automatic k in 2..8). Do not modify."""
    population = segwise.generate_population(1_500, seed=11)
    result = segwise.segment(population.orders.to_pandas(), k_range=(2, 8), random_state=0)
    path = tmp_path_factory.mktemp("kmeans") / "run"
    result.save(path, store=False)
    return SavedRun(path=path, result=result)


def variant(source: Path, target: Path, *, run: dict[str, Any] | None = None,
            names: dict[int, str] | None = None, playbook: dict[str, Any] | None = None) -> Path:
    """A copy of a run directory with run.json keys replaced, segments renamed or a playbook added.

    This is how the tests give the report the payloads of methods and validation
    steps built elsewhere (in the documented shapes of `segwise.report.method_data`).
    """
    shutil.copytree(source, target)
    (target / "report.html").unlink(missing_ok=True)
    if run:
        record = json.loads((target / "run.json").read_text())
        record.update(run)
        (target / "run.json").write_text(json.dumps(record, indent=2))
    if names:
        profiles = json.loads((target / "profiles.json").read_text())
        for segment in profiles["segments"]:
            segment["name"] = names.get(segment["segment_id"], segment["name"])
        (target / "profiles.json").write_text(json.dumps(profiles, indent=2))
    if playbook:
        document, arrays, manifest = read_model_file(target / "model.segwise")
        document["playbook"] = playbook
        write_model_file(target / "model.segwise", document, arrays, segwise_version=manifest["segwise_version"],
                         created_at=manifest["created_at"])
    return target
