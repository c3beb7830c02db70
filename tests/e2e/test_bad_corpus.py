"""The bad-input corpus (tests/data/bad, written by tests/data/make_bad_corpus.py).

Every case runs the real ``segwise`` command in its own copy of the corpus and must
end as its manifest says: exit 2 with the message fragments and no traceback, or
exit 0 with the cleaning action reported (and, for some, a check of the outputs).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from .conftest import Jobs, assert_bad_input, assert_ok, start_segwise

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "bad"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
CASES = {case["id"]: case for case in MANIFEST}


def _generator():
    spec = importlib.util.spec_from_file_location("make_bad_corpus", DATA / "make_bad_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _named_files(case: dict) -> set[str]:
    """The files and directories a case's command is given (the data, model, run, playbook ...)."""
    return {str(a) for a in case["argv"][1:] if not str(a).startswith("--") and not str(a).isdigit()}


def test_every_error_names_a_file_it_was_given():
    # Every refusal says which input it is about: the expected message starts with, or holds, a file
    # (or run directory) of the command line, and test_bad_input_case checks the real stderr holds it.
    for case in MANIFEST:
        if case["exit"] != 2:
            continue
        files = _named_files(case)
        assert any(f in fragment for f in files for fragment in case["stderr"]), (case["id"], files, case["stderr"])


#: Cases whose fix is obvious from the message itself (the file and what is wrong with it).
FIX_IS_THE_MESSAGE = {"duplicate-column-names", "corrupt-parquet", "model-is-a-pickle", "serve-model-is-a-pickle",
                      "model-path-traversal", "model-zip-bomb", "model-tampered-array", "model-pickle-array",
                      "export-missing-run", "customers-not-matching", "only-cancellations", "mixed-date-formats",
                      "playbook-unknown-key"}

#: Words that tell the user what to do.
FIX_WORDS = ("--", "use ", "Use ", "check", "Check", "give", "ask for", "export", "choose", "Rename", "Pass",
             "upgrade", "fix", "Fix", "must", "no currency signs", "Numbers must", "retrain", "probably")


def test_every_error_whose_fix_is_not_obvious_says_what_to_do():
    for case in MANIFEST:
        if case["exit"] != 2 or case["id"] in FIX_IS_THE_MESSAGE:
            continue
        assert any(word in fragment for word in FIX_WORDS for fragment in case["stderr"]), (case["id"], case["stderr"])


def test_the_corpus_has_at_least_30_cases_with_distinct_ids():
    assert len(MANIFEST) >= 30 and len(CASES) == len(MANIFEST)
    assert sum(case["exit"] == 2 for case in MANIFEST) >= 25
    for case in MANIFEST:
        assert case["exit"] in (0, 2) and case["what"]
        assert case["exit"] == 0 or case["stderr"], case["id"]  # every error has its message


def test_the_committed_corpus_is_what_the_script_writes(tmp_path):
    _generator().main(["make_bad_corpus.py", str(tmp_path)])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in CORPUS.iterdir())
    for name in written:
        if name in ("wrong_types.parquet", "huge_cardinality.parquet", "ids_int64.parquet"):
            assert pq.read_table(tmp_path / name).equals(pq.read_table(CORPUS / name)), name
        else:
            assert (tmp_path / name).read_bytes() == (CORPUS / name).read_bytes(), name


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """The corpus plus what its cases need first: trained models and the unsafe models derived from one."""
    base = tmp_path_factory.mktemp("corpus")
    shutil.copytree(CORPUS, base, dirs_exist_ok=True)
    setups = {tuple(argv) for case in MANIFEST for argv in case.get("setup", [])}
    for future in [start_segwise(*argv, cwd=base) for argv in sorted(setups)]:
        assert_ok(future.result())
    generator = _generator()
    for case in MANIFEST:
        if "derive" in case:
            derive = case["derive"]
            generator.derive_model(derive["kind"], base / derive["source"], base / derive["target"])
    return base


DEBUG_CASES = ["ambiguous-customer-id", "model-pickle-array"]


@pytest.fixture(scope="module")
def corpus_runs(prepared, tmp_path_factory) -> Jobs:
    specs = {}
    for case in MANIFEST:
        cwd = tmp_path_factory.mktemp(case["id"])
        shutil.copytree(prepared, cwd, dirs_exist_ok=True)
        specs[case["id"]] = (case["argv"], cwd)
    for id_ in DEBUG_CASES:
        cwd = tmp_path_factory.mktemp(f"debug-{id_}")
        shutil.copytree(prepared, cwd, dirs_exist_ok=True)
        specs[f"debug-{id_}"] = (CASES[id_]["argv"] + ["--debug"], cwd)
    return Jobs(specs)


def _ids(frame: pd.DataFrame) -> pd.Series:
    return frame.assign(customer_id=frame["customer_id"].astype(str)).set_index("customer_id")["segment_id"]


def _check_all_customers_assigned(cwd: Path) -> None:
    assignments = pd.read_parquet(cwd / "segwise-out" / "assignments.parquet")
    source = pd.read_csv(cwd / "quoted_newlines.csv", dtype=str)
    assert sorted(assignments["customer_id"]) == sorted(source["customer_id"].unique())
    assert (source["note"] == "line one\nline two").sum() > 0


def _check_float_ids_match_training(cwd: Path) -> None:
    trained = next(p for p in cwd.glob("trained_int*") if p.is_dir())
    training = _ids(pd.read_csv(trained / "assignments.csv", dtype={"customer_id": str}))
    assigned = _ids(pd.read_csv(cwd / "assigned.csv", dtype={"customer_id": str}))
    assert sorted(assigned.index) == sorted(training.index)      # "7.0" became "7": every customer matched
    assert assigned.reindex(training.index).tolist() == training.tolist()


def _check_customer_attributes_joined(cwd: Path) -> None:
    features = pd.read_parquet(cwd / "segwise-out" / "features.parquet")
    assert len(features) == 40 and features["age"].notna().all()
    assert (features["age"] == features["customer_id"].astype(int) + 20).all()


CHECKS = {
    "all_customers_assigned": _check_all_customers_assigned,
    "float_ids_match_training": _check_float_ids_match_training,
    "customer_attributes_joined": _check_customer_attributes_joined,
}


@pytest.mark.slow
@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_case(corpus_runs, case_id):
    case = CASES[case_id]
    result = corpus_runs[case_id]
    if case["exit"] == 2:
        assert_bad_input(result, *case["stderr"])
        assert result.stdout.strip() == ""
        assert not (result.cwd / "segwise-out").exists()
    else:
        assert_ok(result)
        for fragment in case["stderr"]:
            assert " ".join(fragment.split()) in result.err, f"{fragment!r} not in stderr\n{result}"
    if "check" in case:
        CHECKS[case["check"]](result.cwd)


@pytest.mark.slow
@pytest.mark.parametrize("case_id", DEBUG_CASES)
def test_debug_shows_the_traceback(corpus_runs, case_id):
    result = corpus_runs[f"debug-{case_id}"]
    assert result.returncode == 2, str(result)
    assert "Traceback (most recent call last)" in result.stderr, str(result)
    for fragment in CASES[case_id]["stderr"]:
        assert " ".join(fragment.split()) in result.err, str(result)
