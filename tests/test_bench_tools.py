"""The measuring tools of the benchmarks: process-tree memory and the Spark benchmark records."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from bench.results import describe_machine
from bench.spark import TreeMemorySampler, _markdown, _process_tree

#: A child that starts a grandchild holding 300 MiB of touched memory, then waits for it.
PARENT_OF_A_HOG = textwrap.dedent(
    """
    import subprocess, sys
    hog = "import time; block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(3)"
    subprocess.run([sys.executable, "-c", hog], check=True)
    """
)


def test_tree_memory_counts_the_grandchildren():
    # Spark's work happens in a JVM started by the Python driver: a measure of the
    # driver alone (ru_maxrss of one process) would miss it.
    process = subprocess.Popen([sys.executable, "-c", PARENT_OF_A_HOG])
    with TreeMemorySampler(process.pid) as sampler:
        assert process.wait(timeout=60) == 0
    assert sampler.peak_bytes >= 300 * 2**20


def test_process_tree_of_a_process_without_children_is_itself():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        assert _process_tree(process.pid) == [process.pid]
    finally:
        process.wait(timeout=30)


def test_spark_record_shows_failures_with_their_error():
    record = {
        "size": "10m", "order_lines": 9_991_165, "customers": 884_728, "segments": 6, "driver_memory": "8g",
        "machine": describe_machine(), "started": "2026-11-27T23:00:00+00:00",
        "runs": [
            {"engine": "duckdb", "returncode": 0, "wall_s": 43.6, "peak_tree_rss_mib": 2754,
             "machine_busy_share": 0.75, "timings": {"load": 10.8, "features": 13.5}, "error": None},
            {"engine": "spark", "returncode": 1, "wall_s": 12.0, "peak_tree_rss_mib": 900,
             "machine_busy_share": 0.9, "timings": None, "error": "java.lang.OutOfMemoryError: Java heap space\n"},
        ],
    }
    text = _markdown(record)
    assert "9,991,165 order lines, 884,728 customers" in text
    assert "| duckdb | 0 | 43.6 s | 2,754 MiB | 0.75 | load 10.8, features 13.5 |" in text
    assert "spark failed:" in text and "OutOfMemoryError" in text


def test_exhaustive_k_choice_finds_well_separated_groups():
    from sklearn.datasets import make_blobs

    from bench.kchoice import exhaustive_choice

    points, _ = make_blobs(n_samples=600, centers=4, cluster_std=0.5, center_box=(-20, 20), random_state=3)
    reference = exhaustive_choice(points, (2, 6))
    assert reference["chosen"] == 4
    assert [c["k"] for c in reference["candidates"]] == [2, 3, 4, 5, 6]


def test_k_choice_comparison_records_both_curves():
    import segwise
    from bench.kchoice import _markdown, compare_choices

    population = segwise.generate_population(1500, seed=2)
    features = segwise.build_features(segwise.load_transactions(population.orders))
    record = compare_choices(features, reference_sample=800)
    assert record["reference_sample"] == 800 and record["customers"] == len(features.frame)
    ours, reference = record["segwise"], record["exhaustive"]
    assert [c["k"] for c in ours["candidates"]] == [c["k"] for c in reference["candidates"]] == list(range(2, 13))
    assert record["same_choice"] == (ours["chosen"] == reference["chosen"])
    text = _markdown({**record, "size": "test", "machine": describe_machine(), "started": "now"})
    assert f"**k = {reference['chosen']}**" in text


def test_a_measured_command_reports_its_tree_memory_cpu_and_load():
    from bench.proctree import measure_command

    # A child that holds ~120 MiB while a grandchild holds ~60 MiB: the tree's sum counts both.
    script = textwrap.dedent("""
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "b = bytearray(60 * 2**20); import time; time.sleep(1.5)"])
        data = bytearray(120 * 2**20)
        sum(range(3_000_000))
        grandchild.wait()
    """)
    result = measure_command([sys.executable, "-c", script])
    assert result["returncode"] == 0 and result["stderr_tail"] == ""
    assert result["peak_tree_rss_mib"] >= 180
    assert result["wall_s"] >= 1.5 and result["cpu_s"] > 0
    assert result["loadavg_before"] >= 0


def test_a_failing_command_keeps_the_end_of_its_error_output():
    from bench.proctree import measure_command

    result = measure_command([sys.executable, "-c", "import sys; sys.exit('no such orders file')"])
    assert result["returncode"] == 1
    assert "no such orders file" in result["stderr_tail"]


def test_a_quality_checkpoint_reuses_rows_measured_with_the_same_code_and_settings(tmp_path, capsys):
    import json

    from bench.quality.__main__ import main as quality_main

    checkpoint = tmp_path / "quality.jsonl"
    args = ["--size", "small", "--families", "noise_table", "--checkpoint", str(checkpoint), "--no-record"]
    assert quality_main(args) == 0
    first = capsys.readouterr()
    assert "measured before" not in first.err
    entries = [json.loads(line) for line in checkpoint.read_text().splitlines()]
    assert [e["row"]["family"] for e in entries] == ["noise_table"]
    assert entries[0]["key"]["size"] == "small" and entries[0]["key"]["seed"] == 0

    assert quality_main(args) == 0  # the same code and settings: the row is read, not measured again
    second = capsys.readouterr()
    assert "noise_table: measured before" in second.err
    assert "came from the checkpoint file" in second.out
    assert len(checkpoint.read_text().splitlines()) == 1
    table_row = next(line for line in second.out.splitlines() if line.startswith("| noise_table"))
    assert table_row in first.out  # the same figures as when it was measured

    assert quality_main([*args, "--seed", "1"]) == 0  # another seed is another measurement
    assert "measured before" not in capsys.readouterr().err
    assert len(checkpoint.read_text().splitlines()) == 2


def test_the_omnichannel_probe_plants_seven_types_in_a_log_with_its_own_column_names(capsys):
    from bench.quality.probe_omnichannel import main as probe_main, generate

    log, truth = generate(700, 0)
    assert list(log.columns) == ["user", "purchased_at", "total", "channel", "category", "promo", "order_no"]
    assert truth.nunique() == 7 and set(log["user"]) == set(truth.index)  # every customer has an order
    assert set(log["channel"]) == {"web", "app", "store"} and log["order_no"].is_unique
    probe_main(["--n", "700", "--seeds", "0"])
    assert capsys.readouterr().out.startswith("n=700 seed=0: k ")
