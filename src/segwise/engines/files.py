"""Looking at input files before any engine reads them: kinds, encodings, delimiters, headers.

No SQL here: these helpers read bytes and text on this machine, and both engines'
readers use them to choose how to read a source and to phrase what went wrong.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from segwise.errors import InputError

__all__ = [
    "PARQUET_SUFFIXES", "DUCKDB_SUFFIXES", "SNIFF_BYTES", "is_frame", "has_parquet_magic", "has_duckdb_magic",
    "first_line", "read_head", "decode_head", "choose_encoding", "looks_whitespace_separated", "is_number",
    "unescape_delimiter", "ends_with_line_break", "check_unique_header", "one_column_hint",
]

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
SNIFF_BYTES = 64 * 1024


def is_frame(source: Any) -> bool:
    """Whether ``source`` is a pandas, polars or Arrow object."""
    module = type(source).__module__
    return module.startswith(("pandas", "polars", "pyarrow"))


def has_parquet_magic(path: Path) -> bool:
    """Whether the file starts like a Parquet file."""
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def has_duckdb_magic(path: Path) -> bool:
    """Whether the file starts like a DuckDB database."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    return len(head) == 16 and head[8:12] == b"DUCK"


def first_line(exc: BaseException) -> str:
    """The first line of an error message (engines' messages run to many lines)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def read_head(path: Path) -> bytes:
    """The first `SNIFF_BYTES` bytes of a file."""
    with open(path, "rb") as fh:
        return fh.read(SNIFF_BYTES)


def decode_head(head: bytes, encoding: str) -> str:
    """The head of a file as text (UTF-8 with or without BOM, else Latin-1)."""
    return head.decode("utf-8-sig" if encoding == "utf-8" else "latin-1", errors="replace")


def choose_encoding(path: Path, head: bytes, encoding: str, label: str) -> str:
    """The encoding to read a text file with: ``"auto"``, ``"utf-8"`` or ``"latin-1"``."""
    if b"\x00" in head:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise InputError(
                f"{label}: the file is UTF-16 encoded; save it as UTF-8 (or CSV UTF-8 in Excel) and try again"
            )
        raise InputError(f"{label}: the file holds NUL bytes and does not look like a text file")
    if encoding not in ("auto", "utf-8", "utf8", "latin-1", "latin1", "cp1252", "iso-8859-1"):
        raise InputError(f"unknown encoding {encoding!r}: use auto, utf-8 or latin-1")
    if encoding in ("latin1", "cp1252", "iso-8859-1"):
        return "latin-1"
    if encoding == "utf8":
        return "utf-8"
    return encoding


def looks_whitespace_separated(lines: list[str]) -> bool:
    """Whether the lines are fields separated by runs of blanks (no usual delimiter)."""
    sample = [ln for ln in lines[:50] if ln.strip()]
    if not sample:
        return False
    if any(ch in ln for ln in sample for ch in ",;\t|"):
        return False
    return all(len(ln.split()) > 1 for ln in sample)


def is_number(token: str) -> bool:
    """Whether ``token`` reads as a number."""
    try:
        float(token)
        return True
    except ValueError:
        return False


def unescape_delimiter(delimiter: str) -> str:
    """The delimiter character of ``\\t``, ``tab``, ``semicolon``, ``comma`` or ``pipe`` (others as given)."""
    return {"\\t": "\t", "tab": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}.get(delimiter, delimiter)


def ends_with_line_break(path: Path) -> bool:
    """Whether the file ends with a line break (else its last line may be cut off)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) in (b"\n", b"\r")


def check_unique_header(path: Path, enc: str, delimiter: str | None, label: str) -> None:
    """Refuse a header naming a column twice: which of the two is meant cannot be known."""
    if not delimiter or len(delimiter) != 1:
        return
    with open(path, encoding=enc, errors="replace", newline="") as fh:
        first = fh.readline()
    try:
        names = next(csv.reader([first.lstrip("\ufeff")], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return
    names = [n.strip() for n in names]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{label}: the header line names {', '.join(map(repr, repeated))} more than once; segwise cannot "
            "tell which is meant. Rename or remove the duplicate column and export again."
        )


def one_column_hint(label: str, columns: list[str], delimiter: str | None) -> None:
    """Raise when a delimited file was read as one column whose name holds a usual delimiter."""
    if len(columns) != 1:
        return
    only = columns[0]
    for candidate in (";", ",", "\t", "|"):
        if candidate in only:
            shown = "\\t" if candidate == "\t" else candidate
            raise InputError(
                f"{label}: only one column was found ({only!r}): the delimiter is probably "
                f"{shown!r}, not {delimiter or 'the one detected'!r}. Pass --delimiter '{shown}' "
                f"(Python: delimiter='{shown}')."
            )
