"""The cleaning dialect: how an engine reads raw inputs and writes the SQL that types their values.

`segwise.data` holds the one set of cleaning rules; each engine gives it a
`CleaningDialect` (``engine.cleaning``) that reads a source into a relation of raw
rows (`RawInput`) and writes SQL turning a column into timestamps, numbers, ids or
flags (`ParsedColumn`), raising an `InputError` that names the source, column,
offending rows and the fix. What is the same in every SQL dialect lives here once;
each engine's subclass writes only what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segwise.engines.base import value_kind
from segwise.errors import InputError

__all__ = ["ROW_COL", "ISO_8601", "RawInput", "ParsedColumn", "CleaningDialect"]

#: The column numbering raw rows (1-based line or row), added by every reader.
ROW_COL = "__segwise_row"

#: How a timestamp column in ISO 8601 was parsed (`ParsedColumn.how`).
ISO_8601 = "ISO 8601"

_TRUE = ("true", "t", "yes", "y", "1", "1.0", "x")
_FALSE = ("false", "f", "no", "n", "0", "0.0", "")


@dataclass
class RawInput:
    """A source loaded into the engine, before any typing or cleaning.

    ``row_kind`` says how ``__segwise_row`` numbers rows in messages: ``"line"`` for
    text files (1-based line in the file), ``"row"`` for everything else (1-based).
    """

    name: str
    label: str
    columns: dict[str, str]
    row_kind: str = "row"
    notes: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    #: Number of the last row when the file does not end with a line break (it may be cut off).
    unterminated_row: int | None = None

    @property
    def kinds(self) -> dict[str, str]:
        """Column name to coarse value kind, without the internal row column."""
        return {c: value_kind(t) for c, t in self.columns.items() if c != ROW_COL}

    def rows_phrase(self, rows: list[int]) -> str:
        """'lines 4, 9, 12' or 'rows 4, 9, 12'."""
        word = self.row_kind + ("s" if len(rows) != 1 else "")
        return f"{word} {', '.join(str(int(r)) for r in rows)}"

    def cut_off_hint(self, rows: list[int]) -> str:
        """A sentence when the last row is among ``rows`` and the file lacks a final line break."""
        if self.unterminated_row is None or self.unterminated_row not in rows:
            return ""
        return (f" {self.row_kind.capitalize()} {self.unterminated_row} is the last one and the file does not "
                "end with a line break: the file was probably cut off (truncated); export it again.")


#: How a text column written with a decimal comma was read (`CleaningDialect.number_sql`).
DECIMAL_COMMA = "text with a decimal comma as number"
#: A number with a decimal comma: optional sign, digits (points only between groups of
#: three), optional comma and decimals ("74,65", "1.234,56", "-3").
_DECIMAL_COMMA = "[+-]?([0-9]{1,3}([.][0-9]{3})+|[0-9]+)(,[0-9]+)?"


@dataclass
class ParsedColumn:
    """SQL for a typed column, and how it was parsed (recorded with the run)."""

    sql: str
    how: str


class CleaningDialect:
    """Reading and value-typing SQL of one engine (``engine.cleaning``).

    Subclasses define `read_raw`, `timestamp_sql`, ``NULL_TEXT``, ``STRING``,
    `full_match`, `starts_with_c`, `line_hash`, `invalid_number` and
    `_integral_text`; the rest is written once here, in SQL both dialects accept.
    """

    #: A NULL text value.
    NULL_TEXT = "CAST(NULL AS STRING)"
    #: The name of the text type in casts.
    STRING = "STRING"

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ per engine

    def read_raw(self, source: Any, **options: Any) -> RawInput:  # pragma: no cover - every engine overrides
        """Load ``source`` into the engine as raw rows (see `segwise.data.load_transactions`)."""
        raise NotImplementedError

    def timestamp_sql(self, raw: RawInput, column: str,
                      date_format: str | None = None) -> ParsedColumn:  # pragma: no cover
        """SQL turning ``column`` into a timestamp, detecting the format from the values."""
        raise NotImplementedError

    def full_match(self, text: str, pattern: str) -> str:  # pragma: no cover
        """SQL: ``text`` matches the regular expression ``pattern`` entirely."""
        raise NotImplementedError

    def starts_with_c(self, order: str) -> str:  # pragma: no cover
        """SQL: the order id starts with C or c (an invoice-prefix cancellation)."""
        raise NotImplementedError

    def line_hash(self, quoted_columns: list[str]) -> str:  # pragma: no cover
        """SQL: a hash of the whole source line, for finding double exports."""
        raise NotImplementedError

    def invalid_number(self, column: str) -> str:  # pragma: no cover
        """SQL: the number is missing, NaN or infinite."""
        raise NotImplementedError

    def _integral_text(self, text: str) -> str:  # pragma: no cover
        """SQL: ``text`` with a fraction of zeros dropped (``'12345.00'`` -> ``'12345'``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared

    def offending(self, raw: RawInput, condition: str, column: str, limit: int = 5) -> tuple[list[int], list[str]]:
        """Row numbers and values of the first rows where the SQL ``condition`` holds."""
        engine = self.engine
        rows = engine.execute(
            f"SELECT {ROW_COL}, CAST({engine.quote(column)} AS STRING) FROM {engine.quote(raw.name)} "
            f"WHERE {condition} ORDER BY {ROW_COL} LIMIT {limit}"
        )
        return [r[0] for r in rows], [r[1] for r in rows]

    def count_rows(self, raw: RawInput, condition: str) -> int:
        """Rows of ``raw`` where the SQL ``condition`` holds."""
        return int(self.engine.execute(f"SELECT count(*) FROM {self.engine.quote(raw.name)} WHERE {condition}")[0][0])

    def check_values(self, raw: RawInput, bad: str, column: str, what: str, fix: str) -> None:
        """Raise an InputError naming the first rows where the SQL condition ``bad`` holds, if any.

        The message reads "LABEL: column 'C': N WHAT (lines ...: values). FIX".
        """
        n_bad = self.count_rows(raw, bad)
        if n_bad:
            rows, values = self.offending(raw, bad, column)
            raise InputError(
                f"{raw.label}: column {column!r}: {n_bad} {what} "
                f"({raw.rows_phrase(rows)}: {', '.join(map(repr, values))}).{raw.cut_off_hint(rows)} {fix}"
            )

    def text_sql(self, column: str) -> str:
        """SQL for a trimmed text column with empty strings as NULL."""
        return f"NULLIF(trim(CAST({self.engine.quote(column)} AS {self.STRING})), '')"

    def id_sql(self, raw: RawInput, column: str) -> str:
        """SQL turning an id column into trimmed text; ``12345.0`` becomes ``12345``.

        Ids exported through spreadsheets or pandas often arrive as floats; without this
        the same customer would not match across files.
        """
        kind = raw.kinds[column]
        col = self.engine.quote(column)
        if kind == "float":
            return (
                f"CASE WHEN {col} = floor({col}) AND abs({col}) < 1e18 "
                f"THEN CAST(CAST({col} AS BIGINT) AS {self.STRING}) ELSE CAST({col} AS {self.STRING}) END"
            )
        if kind == "integer":
            return f"CAST({col} AS {self.STRING})"
        text = self.text_sql(column)
        # Only a text with a '.' can end in '.0': the cheap test spares most ids the regex
        # (a second per 10M lines).
        return f"CASE WHEN contains({text}, '.') THEN {self._integral_text(text)} ELSE {text} END"

    def number_sql(self, raw: RawInput, column: str) -> ParsedColumn:
        """SQL turning ``column`` into DOUBLE; text that is not a number is an error.

        A text column whose every value is written with a decimal comma (``74,65``,
        ``1.234,56``: points only between groups of three digits) is read that way, as
        spreadsheets in much of Europe export it (``how`` is then `DECIMAL_COMMA`). A
        column that mixes the two ways (``12.50`` beside ``3,20``) is an error.
        """
        kind = raw.kinds[column]
        col = self.engine.quote(column)
        if kind in ("integer", "float"):
            return ParsedColumn(f"CAST({col} AS DOUBLE)", "native number")
        if kind == "boolean":
            return ParsedColumn(f"CAST({col} AS DOUBLE)", "boolean as 0/1")
        text = f"NULLIF(trim(CAST({col} AS STRING)), '')"
        parsed = f"TRY_CAST({text} AS DOUBLE)"
        not_plain = f"{text} IS NOT NULL AND {parsed} IS NULL"
        if self.count_rows(raw, not_plain) and not self.count_rows(
                raw, f"{text} IS NOT NULL AND NOT {self.full_match(text, _DECIMAL_COMMA)}"):
            return ParsedColumn(f"TRY_CAST(replace(replace({text}, '.', ''), ',', '.') AS DOUBLE)", DECIMAL_COMMA)
        self.check_values(
            raw, not_plain, column, "values are not numbers",
            "Numbers must use '.' for decimals (or ',' in every value of the column, with '.' only between "
            "thousands) and no currency signs; fix those values or choose another column.",
        )
        return ParsedColumn(parsed, "text as number")

    def flag_sql(self, raw: RawInput, column: str) -> ParsedColumn:
        """SQL turning a flag column into BOOLEAN (true/yes/1, or any positive amount)."""
        kind = raw.kinds[column]
        col = self.engine.quote(column)
        if kind == "boolean":
            return ParsedColumn(f"CAST({col} AS BOOLEAN)", "boolean")
        if kind in ("integer", "float"):
            return ParsedColumn(f"({col} > 0)", "positive number means yes")
        text = f"lower(trim(CAST({col} AS STRING)))"
        numeric = f"TRY_CAST({text} AS DOUBLE)"
        truthy = "(" + ", ".join(f"'{v}'" for v in _TRUE) + ")"
        falsy = "(" + ", ".join(f"'{v}'" for v in _FALSE) + ")"
        bad = f"{col} IS NOT NULL AND {text} NOT IN {truthy} AND {text} NOT IN {falsy} AND {numeric} IS NULL"
        n_bad = self.count_rows(raw, bad)
        if n_bad:
            rows, values = self.offending(raw, bad, column)
            raise InputError(
                f"{raw.label}: column {column!r}: {n_bad} values are not yes/no flags "
                f"({raw.rows_phrase(rows)}: {', '.join(map(repr, values))}). Use true/false, "
                "yes/no, 1/0 or a discount amount."
            )
        return ParsedColumn(
            f"CASE WHEN {col} IS NULL THEN NULL WHEN {text} IN {truthy} THEN true "
            f"WHEN {text} IN {falsy} THEN false ELSE {numeric} > 0 END",
            "text flag",
        )
