"""Commands that turn segments into action: playbook, cards, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from segwise.cli.app import app, err, out
from segwise.cli.errors import handle_errors
from segwise.cli.files import write_atomic_table
from segwise.cli.options import DebugOpt
from segwise.errors import InputError

playbook_app = typer.Typer(
    name="playbook", help="Write, check and apply playbooks: what to do with each segment.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(playbook_app, name="playbook")


def _model_path(path: Path) -> Path:
    """A model file, or the model.segwise of a run directory."""
    return path / "model.segwise" if path.is_dir() else path


def say(text: str, console=out) -> None:
    """Print plain text (user data such as names and paths is never read as markup)."""
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def _echo(text: str) -> None:
    # Plain text on stdout: rich would re-wrap and interpret the Markdown.
    typer.echo(text, nl=not text.endswith("\n"))


@playbook_app.command("init")
@handle_errors
def playbook_init(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model.segwise file or a run directory.")],
    out_file: Annotated[Path, typer.Option("--out", help="Playbook file to write.")] = Path("playbook.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing playbook file.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Write a starter playbook generated from a model's segment profiles.

    One table per segment with tactics, channels, cadence, price sensitivity,
    success metrics and next-best-action rules whose thresholds come from the
    segment's own medians. Edit it, then store it with `segwise run --playbook`.
    """
    from segwise.model import load_model
    from segwise.persist import atomic_write_bytes
    from segwise.playbook_starter import starter_playbook

    if out_file.exists() and not force:
        raise InputError(f"{out_file}: the file exists; choose another --out or pass --force to overwrite it")
    model = load_model(_model_path(model_path))
    text = starter_playbook(model)
    atomic_write_bytes(out_file, text.encode("utf-8"))
    say(f"playbook for {len(model.names)} segments written to {out_file}")
    say(f"edit it, then: segwise run DATA --playbook {out_file}   (or segwise playbook check {out_file} "
              f"{model_path})")


@playbook_app.command("check")
@handle_errors
def playbook_check(
    playbook_path: Annotated[Path, typer.Argument(metavar="PLAYBOOK", help="Playbook TOML file.")],
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model.segwise file or a run directory.")],
    debug: DebugOpt = False,
) -> None:
    """Check a playbook against a model: segment names, feature names in rules, keys."""
    from segwise.model import load_model
    from segwise.playbook import load_playbook

    model = load_model(_model_path(model_path))
    playbook = load_playbook(playbook_path, model)
    covered = {p.segment_id for p in playbook.segments}
    say(f"{playbook_path}: valid for this model ({len(playbook)} of {len(model.names)} segments)")
    for segment_id, name in sorted(model.names.items()):
        play = playbook.for_segment(segment_id)
        rules = "no entry" if play is None else f"{len(play.actions)} next-best-action rule(s)"
        say(f"  {segment_id} {name}: {rules}")
    if len(covered) < len(model.names):
        say("note: segments without an entry get no tactics and no next-best action", err)


@playbook_app.command("actions")
@handle_errors
def playbook_actions(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="Output directory of `segwise run`.")],
    out_file: Annotated[Path, typer.Option("--out", help="Output file (.csv or .parquet).")] = Path("actions.csv"),
    playbook_path: Annotated[
        Optional[Path], typer.Option("--playbook", help="Playbook file (default: the one stored in the model).")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Write every customer's next-best action: the first rule of its segment that holds."""
    import pandas as pd

    from segwise.runs import load_run
    from segwise.playbook import load_playbook

    run = load_run(run_dir)
    model = run["model"]
    playbook = load_playbook(playbook_path, model) if playbook_path is not None else model.playbook
    if playbook is None:
        raise InputError(f"{run_dir}: the model has no playbook; pass --playbook FILE (start one with "
                         f"`segwise playbook init {run_dir}`)")
    features = pd.read_parquet(run_dir / "features.parquet")
    actions = playbook.next_best_actions(run["assignments"], features)
    actions.insert(2, "segment_name", actions["segment_id"].map(model.names))
    write_atomic_table(actions, out_file)
    covered = int(actions["action"].notna().sum())
    say(f"{covered:,} of {len(actions):,} customers have a next-best action; written to {out_file}")
    for action, count in actions["action"].value_counts().items():
        say(f"  {count:>8,}  {action}")


@app.command()
@handle_errors
def cards(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="Output directory of `segwise run`.")],
    file_format: Annotated[str, typer.Option("--format", help="md, html or json.")] = "md",
    out_file: Annotated[
        Optional[Path], typer.Option("--out", help="File to write (default: md and json print, html writes "
                                                   "RUN_DIR/cards.html).")
    ] = None,
    playbook_path: Annotated[
        Optional[Path], typer.Option("--playbook", help="Playbook file (default: the one stored in the model).")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Profile cards, one per segment: size, value, retention, channel, traits and the playbook's tactics."""
    from segwise.cards import cards_html, cards_json, cards_markdown, load_cards
    from segwise.persist import atomic_write_bytes

    renderers = {"md": cards_markdown, "html": cards_html, "json": cards_json}
    if file_format not in renderers:
        raise InputError(f"--format must be md, html or json, got {file_format!r}")
    segment_cards = load_cards(run_dir, playbook_path)
    text = renderers[file_format](segment_cards)
    if out_file is None and file_format == "html":
        out_file = run_dir / "cards.html"
    if out_file is None:
        _echo(text)
        return
    atomic_write_bytes(out_file, text.encode("utf-8"))
    say(f"{len(segment_cards)} segment cards written to {out_file}")


# --------------------------------------------------------------------------- export


def _export_kind(target: str) -> str:
    lowered = target.lower()
    if lowered.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    if lowered.startswith(("http://", "https://")):
        return "webhook"
    suffix = Path(target).suffix.lower()
    kinds = {".csv": "file", ".parquet": "file", ".pq": "file", ".duckdb": "duckdb", ".ddb": "duckdb",
             ".db": "duckdb", ".jsonl": "feed", ".ndjson": "feed"}
    if suffix not in kinds:
        raise InputError(
            f"--to {target!r}: unknown target; use a .csv or .parquet file, a .duckdb file, a postgresql:// URL, "
            "a .jsonl change feed or an http(s):// webhook URL"
        )
    return kinds[suffix]


@app.command()
@handle_errors
def export(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="Output directory of `segwise run`.")],
    to: Annotated[
        list[str],
        typer.Option("--to", help="Target (repeatable): FILE.csv/.parquet, FILE.duckdb, postgresql://..., "
                                  "FEED.jsonl (change feed) or http(s)://... (webhook of changes)."),
    ],
    table: Annotated[
        Optional[str], typer.Option("--table", help="Table for DuckDB/PostgreSQL (default segwise_segments).")
    ] = None,
    previous: Annotated[
        Optional[Path], typer.Option("--previous", help="Earlier run directory or assignments file for the change "
                                                        "feed (default: the run before this one in the store).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Events per webhook request.")] = 500,
    attempts: Annotated[int, typer.Option("--attempts", help="Tries per webhook request before giving up.")] = 4,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the webhook or database.")] = 10.0,
    debug: DebugOpt = False,
) -> None:
    """Export segments: files, a DuckDB or PostgreSQL table (upsert), or a change feed / webhook.

    Tables get customer_id, segment_id, segment_name, confidence, model_version,
    as_of and updated_at, upserted on customer_id in one transaction. The change
    feed lists customers who entered, changed or left a segment since the
    previous run, each event with an idempotency key.
    """
    from segwise.export import (
        change_events, deliver_webhook, export_frame, previous_assignments, segment_changes, upsert_duckdb,
        upsert_postgres, write_change_feed, write_export_file,
    )
    from segwise.runs import load_run

    kinds = [(target, _export_kind(target)) for target in to]
    loaded = load_run(run_dir)
    run = loaded["run"]
    model_version = loaded["model"].metadata.get("model_id", "")
    frame = export_frame(loaded["assignments"], model_version=model_version, as_of=run.get("as_of"))
    events = None
    for target, kind in kinds:
        if kind == "file":
            write_export_file(frame, target)
            say(f"{len(frame):,} customers written to {target}")
        elif kind in ("duckdb", "postgresql"):
            name = table or "segwise_segments"
            if kind == "duckdb":
                result = upsert_duckdb(frame, target, name)
            else:
                result = upsert_postgres(frame, target, name, connect_timeout=max(1, int(timeout)))
            say(
                f"{result.total:,} customers upserted into {result.target} table {result.table}: "
                f"{result.inserted:,} inserted, {result.updated:,} updated, {result.unchanged:,} unchanged")
        else:
            if events is None:
                previous_run_id, before = previous_assignments(run_dir, run, previous)
                changes = segment_changes(before, loaded["assignments"])
                events = change_events(changes, run_id=run["run_id"], previous_run_id=previous_run_id,
                                       model_version=model_version, as_of=run.get("as_of"),
                                       occurred_at=run["created_at"])
                counts = changes["change"].value_counts()
                since = f"run {previous_run_id}" if previous_run_id else "nothing (first export: everyone entered)"
                say(f"changes since {since}: "
                    + ", ".join(f"{counts.get(c, 0):,} {c}" for c in ("entered", "changed", "left")))
            if kind == "feed":
                write_change_feed(events, target)
                say(f"{len(events):,} change events written to {target}")
            else:
                report = deliver_webhook(events, target, batch_size=batch_size, max_attempts=attempts,
                                         timeout_seconds=timeout)
                say(
                    f"{report['events']:,} change events delivered to {report['url']} in {report['batches']} "
                    f"request(s) ({report['retries']} retried)")
