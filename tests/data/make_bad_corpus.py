"""Write the bad-input corpus: small broken inputs and what segwise must answer.

Usage::

    python tests/data/make_bad_corpus.py [DIR]      # default: tests/data/bad

Writes one small file per case (a few need two) and ``manifest.json``: a list of
cases, each with

- ``id`` and ``what`` (the defect, in words);
- ``argv``: the ``segwise`` command line, run in the corpus directory;
- ``setup`` (optional): command lines run first (e.g. training a model);
- ``exit``: 2 for an `InputError` (or a refused model file), 0 when segwise
  cleans the defect itself;
- ``stderr``: fragments the message must contain (an error names the file, the
  column and the fix; a cleaning action is reported with its count);
- ``check`` (optional): a named check of the outputs, defined in the test.

The test (tests/e2e/test_bad_corpus.py) regenerates the corpus in a temporary
directory and compares it with the committed copy, so the two never drift apart.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HEADER = "customer_id,order_date,amount"


def _log(n_customers: int = 30, *, seed: int = 0, id_format: str = "C{:04d}", date_format: str = "%Y-%m-%d",
         delimiter: str = ",") -> list[str]:
    """A small well-formed log (customer, date, amount) to break in one way."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", "2024-12-31", freq="D")
    lines = [HEADER.replace(",", delimiter)]
    for customer in range(1, n_customers + 1):
        for _ in range(int(rng.integers(1, 5))):
            day = days[int(rng.integers(0, len(days)))]
            lines.append(delimiter.join([id_format.format(customer), day.strftime(date_format),
                                         f"{rng.uniform(5, 300):.2f}"]))
    return lines


def _text(directory: Path, name: str, lines: list[str], *, encoding: str = "utf-8", end: str = "\n",
          bom: bool = False) -> str:
    data = ("\n".join(lines) + end).encode(encoding)
    (directory / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return name


def _replace_column(lines: list[str], column: int, values) -> list[str]:
    """The log with one column's values replaced (cycled) from ``values``."""
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        fields = line.split(",")
        fields[column] = values[i % len(values)]
        out.append(",".join(fields))
    return out


def _model_with(directory: Path, name: str, source: Path, edit) -> str:
    """A copy of the model file ``source`` with ``edit(members) -> members`` applied."""
    with zipfile.ZipFile(source) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(directory / name, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in edit(members).items():
            zf.writestr(member, data)
    return name


def write_corpus(directory: Path) -> list[dict]:
    """Write every case into ``directory``; returns the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    good = _log()
    cases: list[dict] = []

    def case(id_: str, what: str, argv: list[str], exit_: int, stderr: list[str], **extra) -> None:
        cases.append({"id": id_, "what": what, "argv": argv, "exit": exit_, "stderr": stderr, **extra})

    # ------------------------------------------------------------------ columns and structure
    f = _text(directory, "missing_customer_column.csv", [",".join(x.split(",")[1:]) for x in good])
    case("missing-customer-column", "no customer id column", ["run", f], 2,
         [f"{f}: could not find a customer id column", "--customer-id-col NAME"])
    f = _text(directory, "missing_amount_column.csv", [",".join(x.split(",")[:2]) for x in good])
    case("missing-amount-column", "no amount column", ["run", f], 2,
         [f"{f}: could not find an amount column", "--amount-col NAME"])
    f = _text(directory, "ambiguous_customer_id.csv", ["customer_id,CustomerID,order_date,amount"] + [
        f"{c},{c},{d},{a}" for c, d, a in (x.split(",") for x in good[1:])])
    case("ambiguous-customer-id", "two candidate customer id columns", ["run", f], 2,
         [f"{f}: columns", "could each be the customer id; segwise will not guess", "--customer-id-col NAME"])
    f = _text(directory, "duplicate_column_names.csv", ["customer_id,order_date,amount,amount"] + [
        f"{x},{x.split(',')[2]}" for x in good[1:]])
    case("duplicate-column-names", "the header names a column twice", ["run", f], 2,
         [f"{f}: the header line names 'amount' more than once", "Rename or remove the duplicate"])
    lines = list(good)
    lines.insert(len(lines) // 2, HEADER)
    f = _text(directory, "repeated_header_line.csv", lines)
    case("repeated-header-line", "the header line repeated inside the data (two exports concatenated)",
         ["run", f, "--segments", "2"], 0,
         ["warning: repeated_header_line.csv: 1 line(s) repeat the header line", "they were skipped"])
    f = _text(directory, "empty_amount_column.csv", _replace_column(good, 2, [""]))
    case("empty-amount-column", "the amount column is entirely empty", ["run", f], 2,
         [f"{f}: column 'amount' (the amount) is empty in all 81 rows", "--amount-col NAME"])
    # ------------------------------------------------------------------ dates
    f = _text(directory, "mixed_date_formats.csv", _replace_column(
        good, 1, ["2024-03-05", "05/03/2024", "2024-04-11", "11.04.2024", "2024-06-30"]))
    case("mixed-date-formats", "dates written in several formats", ["run", f], 2,
         [f"{f}: column 'order_date'", "--date-format"])
    f = _text(directory, "unparseable_dates.csv", _replace_column(good, 1, ["yesterday", "soon", "last week"]))
    case("unparseable-dates", "dates that are words", ["run", f], 2,
         [f"{f}: column 'order_date' does not hold dates segwise can read", "--date-format"])
    f = _text(directory, "future_dates.csv", good[:-3] + [
        x.replace("2024-", "2031-", 1) for x in good[-3:]])
    case("future-dates", "orders dated after --as-of", ["run", f, "--as-of", "2025-01-01", "--segments", "2"], 0,
         ["cleaning: after as of 3"])
    f = _text(directory, "as_of_before_data.csv", good)
    case("as-of-before-data", "--as-of before every order", ["run", f, "--as-of", "2020-01-01"], 2,
         ["as_of 2020-01-01 is on or before the first transaction (2024-01-04) of as_of_before_data.csv",
          "choose a later --as-of"])
    # ------------------------------------------------------------------ numbers
    f = _text(directory, "european_decimals.csv", ["customer_id;order_date;amount"] + [
        x.replace(",", ";").replace(".", ",") for x in good[1:]] + ["C0001;2024-02-02;1.234,56"])
    case("european-decimals", "amounts with a decimal comma and a thousands dot ('1.234,56'): read that way",
         ["run", f, "--delimiter", ";", "--segments", "2"], 0,
         ["note: column 'amount' is written with a decimal comma and read that way"])
    f = _text(directory, "mixed_decimals.csv", ["customer_id;order_date;amount"] + [
        x.replace(",", ";").replace(".", ",") for x in good[1:]][:5] + ["C0001;2024-02-02;12.50"])
    case("mixed-decimals", "a decimal comma in some amounts, a decimal point in another ('12.50')",
         ["run", f, "--delimiter", ";"], 2,
         [f"{f}: column 'amount': 5 values are not numbers", "'84,59'", "Numbers must use '.' for decimals"])
    f = _text(directory, "currency_symbols.csv", _replace_column(good, 2, ["$12", "$7.50", "$130.00"]))
    case("currency-symbols", "amounts with a currency symbol ('$12')", ["run", f], 2,
         [f"{f}: column 'amount': 81 values are not numbers", "'$12', '$7.50'",
          "no currency signs"])
    f = _text(directory, "na_amounts.csv", _replace_column(good, 2, ["12.50", "n/a", "8.00", "N/A", "3.10"]))
    case("na-amounts", "'n/a' among the amounts", ["run", f], 2,
         [f"{f}: column 'amount': 32 values are not numbers", "'n/a', 'N/A'",
          "fix those values or choose another column"])
    f = _text(directory, "nan_inf_amounts.csv", _replace_column(good, 2, ["12.50", "nan", "8.00", "inf", "-inf"]))
    case("nan-inf-amounts", "NaN and infinite amounts", ["run", f, "--segments", "2"], 0,
         ["cleaning: invalid amount 48"])
    f = _text(directory, "huge_amounts.csv", _replace_column(good, 2, ["1e308", "12.00", "1e308"]))
    case("huge-amounts", "amounts of 1e308 (their sum overflows)", ["run", f], 2,
         [f"{f}: column 'amount': 54 amounts are 1e+15 or larger", "'1e308'",
          "not a plausible amount of money", "fix those values or choose another column"])
    f = _text(directory, "negative_prices.csv", _replace_column(good, 2, ["12.00", "-5.00", "30.00", "7.25"]))
    case("negative-prices", "negative amounts (returns)", ["run", f, "--segments", "2"], 0,
         ["cleaning: cancellation 20, customers with only returns 1"])
    f = _text(directory, "zero_prices.csv", _replace_column(good, 2, ["12.00", "0", "30.00", "0.00"]))
    case("zero-prices", "zero amounts", ["run", f, "--segments", "2"], 0, ["cleaning: zero amount 40"])
    f = _text(directory, "only_cancellations.csv", _replace_column(good, 2, ["-12.00", "-5.00", "-30.00"]))
    case("only-cancellations", "every line is a cancellation", ["run", f], 2,
         [f"{f}: every one of the 81 usable rows is a cancellation or return", "no purchases to segment"])
    # ------------------------------------------------------------------ customers
    f = _text(directory, "one_customer.csv", [HEADER] + [f"C0001,2024-0{m}-10,{10 * m}.00" for m in range(1, 9)])
    case("one-customer", "a single customer", ["run", f], 2,
         [f"{f}: only 1 customer(s) to segment: segmentation needs at least 2", "--customer-id-col NAME"])
    f = _text(directory, "three_customers.csv", _log(3, seed=2))
    case("fewer-customers-than-segments", "fewer customers than segments asked for",
         ["run", f, "--segments", "5"], 2,
         [f"{f}: 5 segments were asked for but there are only 3 customers", "ask for fewer segments"])
    f = _text(directory, "identical_customers.csv", [HEADER] + [
        f"C{c:04d},2024-0{m}-10,25.00" for c in range(1, 41) for m in (2, 5, 8)])
    case("identical-customers", "every customer behaves identically", ["run", f], 2,
         [f"{f}: all 40 customers have exactly the same features", "nothing to tell them apart",
          "check that this is the real purchase log", "--customer-id-col"])
    f = _text(directory, "customers_not_matching.csv", ["customer_id,age,region"] + [
        f"Z{c:04d},{20 + c},north" for c in range(1, 31)])
    case("customers-not-matching", "a customer table whose ids match no transaction",
         ["run", "good.csv", "--customers", f], 2,
         [f"{f}: none of its customer ids match the transaction log's",
          "check that both files use the same ids"])
    # ------------------------------------------------------------------ encodings and text structure
    _text(directory, "good.csv", good)
    f = _text(directory, "bom.csv", good, bom=True)
    case("byte-order-mark", "a UTF-8 byte-order mark before the header", ["run", f, "--segments", "2"], 0, [])
    latin = [f"{x},{'note' if i == 0 else 'ok'}" for i, x in enumerate(good)]
    latin[4] = latin[4].replace(",ok", ",café crème")
    f = _text(directory, "latin1.csv", latin, encoding="latin-1")
    case("latin1-auto", "Latin-1 bytes (decoded as Latin-1, with a warning)", ["run", f, "--segments", "2"], 0,
         ["warning:", "Latin-1"])
    case("latin1-forced-utf8", "Latin-1 bytes read as UTF-8", ["run", f, "--encoding", "utf-8"], 2,
         [f"{f}: the file is not valid UTF-8", "--encoding latin-1"])
    quoted = ["customer_id,order_date,amount,note"] + [
        f'{x},"line one\nline two"' if i % 3 == 0 else f"{x},plain" for i, x in enumerate(good[1:])]
    f = _text(directory, "quoted_newlines.csv", quoted)
    case("quoted-newlines", "quoted fields holding newlines", ["run", f, "--segments", "2"], 0, [],
         check="all_customers_assigned")
    f = _text(directory, "semicolons.csv", [x.replace(",", ";") for x in good])
    case("wrong-delimiter", "the delimiter given is not the file's", ["run", f, "--delimiter", ","], 2,
         [f"{f}: only one column was found", "Pass --delimiter ';'"])
    f = _text(directory, "truncated_last_line.csv", good[:-1] + [good[-1].split(",")[0] + ",2024-0"], end="")
    case("truncated-last-line", "the last line cut off mid-field", ["run", f], 2,
         [f"{f}: column 'order_date': 1 of 81 values could not be read as dates", "'2024-0'",
          "Line 82 is the last one and the file does not end with a line break: the file was probably cut off"])
    (directory / "empty.csv").write_bytes(b"")
    case("empty-file", "a 0-byte text file", ["run", "empty.csv"], 2,
         ["empty.csv: the file is empty (0 bytes); export the transaction log again"])
    f = _text(directory, "header_only.csv", [HEADER])
    case("header-only", "a header and no rows", ["run", f], 2,
         [f"{f}: the file has a header line but no data rows; export the data again with its rows"])
    # ------------------------------------------------------------------ Parquet
    (directory / "zero_bytes.parquet").write_bytes(b"")
    case("zero-byte-parquet", "a 0-byte Parquet file", ["run", "zero_bytes.parquet"], 2,
         ["zero_bytes.parquet: the file is empty (0 bytes); export the transaction log again"])
    (directory / "not_parquet.parquet").write_bytes(b"PAR1 this is not really parquet")
    case("corrupt-parquet", "a .parquet file that is not Parquet", ["run", "not_parquet.parquet"], 2,
         ["not_parquet.parquet: not a readable Parquet file"])
    rows = [x.split(",") for x in good[1:]]
    pq.write_table(pa.table({
        "customer_id": [r[0] for r in rows],
        "order_date": [r[1] for r in rows],
        "amount": [f"about {r[2]}" for r in rows],
    }), directory / "wrong_types.parquet")
    case("parquet-wrong-types", "a Parquet file whose amount column holds text", ["run", "wrong_types.parquet"], 2,
         ["wrong_types.parquet: column 'amount': 81 values are not numbers",
          "(rows 1, 2, 3, 4, 5: 'about 84.59'", "fix those values or choose another column"])
    # ------------------------------------------------------------------ categories
    n = 50_000
    pd.DataFrame({
        "customer_id": [f"C{i % 400:04d}" for i in range(n)],
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) % 360, unit="D"),
        "amount": np.round(5 + (np.arange(n) * 7919 % 2000) / 10, 2),
        "category": [f"sku-{i:05d}" for i in range(n)],
    }).to_parquet(directory / "huge_cardinality.parquet", index=False)
    case("huge-category-cardinality", "50,000 distinct categories",
         ["features", "huge_cardinality.parquet", "--out", "features.csv"], 0,
         ["warning: huge_cardinality.parquet: column 'category' has 50,000 distinct categories",
          "the 999 most frequent are kept", "(49,001 rows) are counted as 'other'"])
    # ------------------------------------------------------------------ customer ids across files
    f = _text(directory, "ids_int.csv", _log(40, seed=3, id_format="{}"))
    g = _text(directory, "ids_float.csv", [HEADER] + [
        f"{x.split(',')[0]}.0,{','.join(x.split(',')[1:])}" for x in _log(40, seed=3, id_format="{}")[1:]])
    case("ids-float-vs-int", "ids written 12345.0 in one file and 12345 in the other: assign still matches",
         ["assign", "trained_int/model.segwise", g, "--out", "assigned.csv"], 0, [],
         setup=[["run", f, "--out", "trained_int", "--segments", "3"]], check="float_ids_match_training")
    pq.write_table(pa.table({
        "customer_id": pa.array([int(x.split(",")[0]) for x in _log(40, seed=3, id_format="{}")[1:]], pa.int64()),
        "order_date": pa.array(pd.to_datetime([x.split(",")[1] for x in _log(40, seed=3, id_format="{}")[1:]])),
        "amount": pa.array([float(x.split(",")[2]) for x in _log(40, seed=3, id_format="{}")[1:]]),
    }), directory / "ids_int64.parquet")
    case("ids-parquet-int64-vs-csv-float", "int64 ids in a Parquet file, '12345.0' in the CSV to assign",
         ["assign", "trained_int64/model.segwise", g, "--out", "assigned.csv"], 0, [],
         setup=[["run", "ids_int64.parquet", "--out", "trained_int64", "--segments", "3"]],
         check="float_ids_match_training")
    h = _text(directory, "customers_float_ids.csv", ["customer_id,age"] + [f"{c}.0,{20 + c}" for c in range(1, 41)])
    case("customer-table-float-ids", "a customer table with ids '7.0' for transactions with ids 7",
         ["run", f, "--customers", h, "--segments", "2"], 0, [], check="customer_attributes_joined")
    # ------------------------------------------------------------------ config, playbook, model files
    (directory / "playbook_unknown_key.toml").write_text(
        '[segments.0]\ndisplay_name = "Loyal"\nretention_tactics = ["thank them"]\nbudget_eur = 10\n')
    case("playbook-unknown-key", "a playbook with a key segwise does not know",
         ["run", "good.csv", "--playbook", "playbook_unknown_key.toml", "--segments", "2"], 2,
         ["playbook_unknown_key.toml: [segments.\"0\"]: unknown key 'budget_eur'; a segment takes display_name"])
    (directory / "pickle.segwise").write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    case("model-is-a-pickle", "a pickle where a model file should be",
         ["assign", "pickle.segwise", "good.csv", "--out", "a.csv"], 2,
         ["pickle.segwise: not a segwise model file (not a zip archive)"])
    case("serve-model-is-a-pickle", "segwise serve given a pickle instead of a model file",
         ["serve", "pickle.segwise", "--port", "0"], 2,
         ["error: pickle.segwise: not a segwise model file (not a zip archive)"])
    case("export-unknown-target", "segwise export to a file type it cannot write",
         ["export", "trained_good", "--to", "segments.xlsx"], 2,
         ["error: --to 'segments.xlsx': unknown target; use a .csv or .parquet file"],
         setup=[["run", "good.csv", "--out", "trained_good", "--segments", "2"]])
    case("export-missing-run", "segwise export of a run directory that does not exist",
         ["export", "no_such_run", "--to", "segments.csv"], 2, ["error: no_such_run: no such run directory"])
    for kind, what, message in MODEL_DEFECTS:
        case(f"model-{kind}", what, ["assign", f"model_{kind}.segwise", "good.csv", "--out", "a.csv"], 2,
             [f"error: model_{kind}.segwise: ", message],
             setup=[["run", "good.csv", "--out", "trained_good", "--segments", "2"]],
             derive={"kind": kind, "source": "trained_good/model.segwise", "target": f"model_{kind}.segwise"})
    return cases


#: Model files made unsafe in one way each (from a real model, by `derive_model`), and the refusal.
MODEL_DEFECTS = [
    ("path-traversal", "a member named ../../evil.npy", "unsafe member name '../../evil.npy'; refusing to load"),
    ("zip-bomb", "a 64 MiB member of zeros compressed to a few KiB",
     "member 'arrays/padding.npy' has a suspicious compression ratio (zip bomb?)"),
    ("tampered-array", "an array changed after saving",
     "does not match its SHA-256 in the manifest (tampered or corrupt)"),
    ("pickle-array", "an object array (pickle) with a matching SHA-256", "cannot be loaded safely"),
    ("newer-major-version", "format version 2.0",
     "model format version 2.0 is not supported by this segwise (reads 1.x); upgrade segwise or retrain"),
]


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def derive_model(kind: str, source: Path, target: Path) -> None:
    """Write ``target``: the model file ``source`` made unsafe as ``kind`` (see `MODEL_DEFECTS`)."""
    import hashlib

    def first_array(members: dict) -> str:
        return sorted(n for n in members if n.startswith("arrays/"))[0]

    def relisted(members: dict, name: str) -> dict:
        manifest = json.loads(members["manifest.json"])
        manifest["members"][name] = hashlib.sha256(members[name]).hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()
        return members

    def edit(members: dict) -> dict:
        if kind == "path-traversal":
            members["../../evil.npy"] = _npy(np.zeros(3))
        elif kind == "zip-bomb":
            members["arrays/padding.npy"] = b"\0" * (64 * 1024**2)
            members = relisted(members, "arrays/padding.npy")
        elif kind == "tampered-array":
            name = first_array(members)
            members[name] = _npy(np.load(io.BytesIO(members[name])) + 1.0)
        elif kind == "pickle-array":
            name = first_array(members)
            members[name] = _npy(np.array([{"os.system": "echo owned"}], dtype=object), allow_pickle=True)
            members = relisted(members, name)
        elif kind == "newer-major-version":
            manifest = json.loads(members["manifest.json"])
            manifest["format_version"] = "2.0"
            members["manifest.json"] = json.dumps(manifest).encode()
        else:
            raise ValueError(f"unknown model defect {kind!r}")
        return members

    _model_with(target.parent, target.name, source, edit)


def main(argv: list[str]) -> int:
    directory = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent / "bad"
    cases = write_corpus(directory)
    (directory / "manifest.json").write_text(json.dumps(cases, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
