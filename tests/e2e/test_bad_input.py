"""Bad input: exit status 2, a diagnosis on stderr, no traceback, nothing half-written.

The messages asserted here are the user-facing text of `segwise.engines` (their cleaning dialects),
`segwise.schema`, `segwise.data`, the CLI and the model file reader.
"""

from __future__ import annotations

import json
import shutil
import zipfile

import duckdb
import pytest

from . import datasets
from .conftest import Jobs, assert_bad_input, assert_ok, snapshot


def _write_inputs(root, model) -> None:
    """Every bad (and one good) input file the cases below name."""
    w = datasets.write_text
    good = datasets.simple_log_lines(30)
    w(root / "good.csv", good)
    w(root / "no_customer.csv", [",".join(line.split(",")[1:]) for line in good])
    w(root / "no_amount.csv", [",".join(line.split(",")[:2]) for line in good])
    w(root / "two_ids.csv", ["customer_id,CustomerID,order_date,amount"] + [
        f"{c},{c},{d},{a}" for c, d, a in (line.split(",") for line in good[1:])
    ])
    w(root / "words_for_dates.csv", ["customer_id,order_date,amount", "A1,yesterday,12.50", "A2,last week,8.00",
                                     "A3,soon,3.10", "A4,never,1.00"])
    some_bad = list(good)
    for line_no, value in ((5, "2024-13-45"), (9, "n/a"), (20, "31/02/2024")):
        customer, _, amount = some_bad[line_no - 1].split(",")
        some_bad[line_no - 1] = f"{customer},{value},{amount}"
    w(root / "some_bad_dates.csv", some_bad)
    # every day <= 12: 03/04/2024 is 3 April or 4 March, and no value settles it
    w(root / "day_or_month.csv", ["customer_id,order_date,amount"] + [
        f"C{i:03d},{1 + i % 12:02d}/{1 + (i * 5) % 12:02d}/2024,{10 + i}.00" for i in range(40)
    ])
    (root / "empty.csv").write_bytes(b"")
    w(root / "header_only.csv", ["customer_id,order_date,amount"])
    w(root / "semicolons.csv", datasets.simple_log_lines(30, delimiter=";"))
    latin = [f"{line},{'note' if i == 0 else 'ok'}" for i, line in enumerate(good)]
    latin[4] = latin[4].replace(",ok", ",café crème")  # line 5
    w(root / "latin1.csv", latin, encoding="latin-1")
    w(root / "cdnow_header_only.txt", ["   customer_id      date   count   dollar_value"])
    (root / "taken").write_text("a file, not a directory\n")
    # model files: a real one cut short, a real one with an edited (still valid JSON) member
    data = model.read_bytes()
    (root / "truncated.segwise").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(root / "tampered.segwise", "w") as dst:
        for info in src.infolist():
            member = src.read(info.filename)
            if info.filename == "model.json":
                member += b" "
            dst.writestr(info, member)


# (id, argv, fragments of the message on stderr)
CASES = [
    pytest.param(
        ["run", "no_customer.csv"],
        ["error: no_customer.csv: could not find a customer id column (e.g. customer_id, CustomerID, client_id, "
         "user_id): name it with --customer-id-col NAME", "Columns are: order_date, amount."],
        id="missing-customer-id-column",
    ),
    pytest.param(
        ["run", "no_amount.csv"],
        ["no_amount.csv: could not find an amount column (e.g. amount, revenue, sales, total, dollar_value) "
         "or Quantity and UnitPrice columns: name it with --amount-col NAME", "Columns are: customer_id, order_date."],
        id="missing-amount-column",
    ),
    pytest.param(
        ["run", "two_ids.csv"],
        ["two_ids.csv: columns ", "'customer_id'", "'CustomerID'",
         "could each be the customer id; segwise will not guess. Name the right one with --customer-id-col NAME"],
        id="two-customer-id-columns",
    ),
    pytest.param(
        ["run", "words_for_dates.csv"],
        ["words_for_dates.csv: column 'order_date' does not hold dates segwise can read "
         "(lines 2, 3, 4: 'yesterday', 'last week', 'soon'). Pass the format with --date-format"],
        id="unparseable-dates",
    ),
    pytest.param(
        ["run", "some_bad_dates.csv"],
        ["some_bad_dates.csv: column 'order_date': 3 of ", "values could not be read as dates in the format",
         "(lines 5, 9, 20: '2024-13-45', 'n/a', '31/02/2024')", "--date-format"],
        id="some-unparseable-dates",
    ),
    pytest.param(
        ["run", "day_or_month.csv"],
        ["day_or_month.csv: column 'order_date': the dates could be day-first or month-first",
         "and no value settles it. Pass --date-format '%d/%m/%Y' for day first or --date-format '%m/%d/%Y' "
         "for month first"],
        id="day-or-month-first",
    ),
    pytest.param(
        ["run", "empty.csv"],
        ["error: empty.csv: the file is empty (0 bytes); export the transaction log again"],
        id="empty-file",
    ),
    pytest.param(
        ["run", "header_only.csv"],
        ["error: header_only.csv: the file has a header line but no data rows"],
        id="header-only",
    ),
    pytest.param(
        ["run", "cdnow_header_only.txt"],
        ["cdnow_header_only.txt: the file has a header line but no data rows"],
        id="whitespace-header-only",
    ),
    pytest.param(
        ["run", "semicolons.csv", "--delimiter", ","],
        ["semicolons.csv: only one column was found ('customer_id;order_date;amount'): the delimiter is "
         "probably ';', not ','. Pass --delimiter ';'"],
        id="wrong-delimiter",
    ),
    pytest.param(
        ["run", "latin1.csv", "--encoding", "utf-8"],
        ["latin1.csv: the file is not valid UTF-8 (non-UTF-8 bytes at line 5).", "--encoding latin-1"],
        id="not-utf8",
    ),
    pytest.param(
        ["run", "no_such_file.csv"],
        ["error: no_such_file.csv: no such file or directory"],
        id="nonexistent-file",
    ),
    pytest.param(
        ["run"],
        ["error: give a transaction log (DATA), a customer table (--customers FILE), or both"],
        id="no-input",
    ),
    pytest.param(
        ["run", "good.csv", "--segments", "0"],
        ["error: --segments must be at least 1, got 0"],
        id="zero-segments",
    ),
    pytest.param(
        ["run", "good.csv", "--segments", "31"],
        ["error: good.csv: 31 segments were asked for but there are only 30 customers; ask for fewer segments "
         "(or --segments auto)"],
        id="more-segments-than-customers",
    ),
    pytest.param(
        ["run", "good.csv", "--method", "nosuch"],
        ["error: unknown segmentation method 'nosuch'; methods are: ", "kmeans"],
        id="unknown-method",
    ),
    pytest.param(
        ["run", "good.csv", "--method", "spark_gmm"],
        ["error: the method 'spark_gmm' is not fitted by this engine: its models are fitted by the Spark "
         "engine (segwise run --engine spark --method gmm)"],
        id="spark-only-method-on-duckdb",
    ),
    pytest.param(
        ["run", "good.csv", "--engine", "presto"],
        ["error: --engine must be one of duckdb, spark, postgres, got 'presto'"],
        id="unknown-engine",
    ),
    pytest.param(
        ["run", "good.csv", "--engine", "postgres"],
        ["error: --engine postgres runs inside a PostgreSQL database: give DATA as postgresql://"],
        id="postgres-engine-on-a-file",
    ),
    pytest.param(
        ["run", "good.csv", "--spark-master", "local[1]"],
        ["error: --spark-master and --spark-conf need --engine spark"],
        id="spark-option-without-spark",
    ),
    pytest.param(
        ["run", "good.csv", "--out", "taken"],
        ["taken"],
        id="out-is-a-file",
    ),
    pytest.param(
        ["assign", "truncated.segwise", "good.csv", "--out", "a.csv"],
        ["error: truncated.segwise: not a segwise model file"],
        id="model-truncated",
    ),
    pytest.param(
        ["assign", "tampered.segwise", "good.csv", "--out", "a.csv"],
        ["error: tampered.segwise: member 'model.json' does not match its SHA-256 in the manifest"],
        id="model-tampered",
    ),
]


# The fix each message suggests, applied: (id, argv).
FIXES = [
    pytest.param(["run", "day_or_month.csv", "--date-format", "%d/%m/%Y"], id="day-or-month-first"),
    pytest.param(["run", "semicolons.csv", "--delimiter", ";"], id="wrong-delimiter"),
    pytest.param(["run", "latin1.csv", "--encoding", "latin-1"], id="not-utf8"),
]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory, trained):
    """Every case and every fix, each in its own copy of the inputs: id -> Result."""
    inputs = tmp_path_factory.mktemp("bad_inputs")
    _write_inputs(inputs, trained.out / "model.segwise")
    specs = {}
    for prefix, params in (("", CASES), ("fix-", FIXES)):
        for param in params:
            cwd = tmp_path_factory.mktemp(prefix + param.id)
            shutil.copytree(inputs, cwd, dirs_exist_ok=True)
            specs[prefix + param.id] = (param.values[0], cwd)
    return Jobs(specs)


@pytest.mark.parametrize(("argv", "fragments"), CASES)
def test_bad_input_exits_2_with_a_diagnosis(bad_runs, request, argv, fragments):
    result = bad_runs[request.node.callspec.id]
    assert result.args == argv
    assert_bad_input(result, *fragments)
    assert result.stdout.strip() == ""  # no segment table, no "outputs written"
    assert not (result.cwd / "segwise-out").exists()  # the default --out was not created


@pytest.mark.parametrize("argv", FIXES)
def test_the_fix_the_message_suggests_works(bad_runs, request, argv):
    result = assert_ok(bad_runs["fix-" + request.node.callspec.id])
    assert result.args == argv
    assert "warning:" not in result.stderr  # e.g. no Latin-1 fallback warning once the encoding is named
    run = json.loads((result.cwd / "segwise-out" / "run.json").read_text())
    assert run["n_customers"] >= 30


# --------------------------------------------------------------------------- nothing half-written

ATOMIC_CASES = {
    # fails while loading
    "load": ["run", "semicolons.csv", "--delimiter", ",", "--out", "out"],
    # fails after loading and building features, in the segmentation step
    "segment": ["run", "good.csv", "--segments", "100000", "--out", "out"],
}


@pytest.fixture(scope="module")
def atomic_runs(tmp_path_factory, trained):
    """Copies of the training outputs, each hit by one failing command (and one good rerun).

    name -> (snapshot of the copy before the command, Jobs result).
    """
    before, specs = {}, {}
    for name, argv in {**ATOMIC_CASES, "good_rerun": ["run", trained.data, "--out", "out"]}.items():
        cwd = tmp_path_factory.mktemp(f"atomic_{name}")
        _write_inputs(cwd, trained.out / "model.segwise")
        shutil.copytree(trained.out, cwd / "out")
        before[name] = snapshot(cwd / "out")
        specs[name] = (argv, cwd)
    jobs = Jobs(specs)

    class Runs:
        def __getitem__(self, name):
            return before[name], jobs[name]

    return Runs()


@pytest.mark.parametrize("case", list(ATOMIC_CASES))
def test_failed_run_leaves_previous_outputs_byte_identical(atomic_runs, case):
    before, result = atomic_runs[case]
    assert_bad_input(result)
    out = result.cwd / "out"
    after = snapshot(out)
    assert sorted(after) == sorted(before), "no file added or removed (no staging or temporary files left)"
    changed = [name for name in before if after[name] != before[name]]
    assert not changed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_rerun_into_an_existing_directory_replaces_outputs_and_appends_to_the_store(atomic_runs):
    before, result = atomic_runs["good_rerun"]
    assert_ok(result)
    out = result.cwd / "out"
    after = snapshot(out)
    assert sorted(after) == sorted(before)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert after["run.json"] != before["run.json"]  # a new run id
    with duckdb.connect(str(out / "segwise.duckdb"), read_only=True) as con:
        n_runs, n_assigned = con.execute(
            "SELECT (SELECT count(*) FROM runs), (SELECT count(DISTINCT run_id) FROM assignments)"
        ).fetchone()
    assert (n_runs, n_assigned) == (2, 2)
