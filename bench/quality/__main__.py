"""``python -m bench.quality``: segment quality on population families segwise was not tuned on.

Every family is generated, segmented by segwise with no flags, by the seed
notebook baseline and by the oracle (see `bench.quality.measure`), and the
results are written to ``bench/results/quality-<size>-<date>-<machine>.json``
and ``.md``. The families are split into halves A and B (`bench.quality.families`):
defaults are decided on the development half (``--dev``) and reported on the
other, and the summary of both swaps is recorded.

Options: ``--size small|default|large``, ``--dev A|B`` (the development half;
the printed targets are those of the other half), ``--only dev|held-out`` to
run one half while iterating (not recorded), ``--families a,b``, ``--seed``,
``--label NAME`` (records ``quality-<size>-NAME-...``: a variant, not the default),
``--checkpoint FILE`` (each family's row is appended to FILE as soon as it is
measured, and rows already there for the same size, seed, variant and code are
reused: a long ``--size large`` run survives being stopped),
``--off returns-gate|widening|merge|merge-support|merge-weak|second-look|shapes`` (the default with one
selection step, or one bound of the over-split merge, switched off); ``--on overdue`` (the default with
the overdue ratio added to its definition).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.quality.families import FAMILIES
from bench.quality.measure import WEAK_WORDS, measure_family
from bench.results import describe_machine, machine_sentence, record_named

__all__ = ["main", "summarise", "render"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def summarise(rows: list[dict[str, Any]], half: str) -> dict[str, Any]:
    """The issue's targets on one half: baseline, oracle ratio, mean ARI, k within 1, weak structure."""
    mine = [r for r in rows if r["half"] == half]
    structured = [r for r in mine if r["structure"] != "none"]
    ari = [r["segwise_ari"] or 0.0 for r in structured]
    clear = [r["segwise_ari"] or 0.0 for r in structured if r["structure"] == "clear"]
    # A failed run never counts as matching the baseline, even where the baseline scores 0.
    at_least_baseline = [r["family"] for r in structured
                         if r["segwise_ari"] is not None and r["segwise_ari"] >= r["baseline_ari"] - 1e-9]
    near_oracle = [r["family"] for r in structured if (r["segwise_ari"] or 0.0) >= 0.9 * r["oracle_ari"]]
    k_ok = [r["family"] for r in structured if r["segwise_k"] is not None and abs(r["segwise_k"] - r["true_k"]) <= 1]
    none = [r for r in mine if r["structure"] == "none"]
    weak = [r["family"] for r in none if any(w in str(r.get("segwise_structure", "")).lower() for w in WEAK_WORDS)]
    n = max(len(structured), 1)
    return {
        "half": half,
        "families": [r["family"] for r in mine],
        "at_least_baseline": f"{len(at_least_baseline)}/{len(structured)}",
        "at_least_0.9_oracle": f"{len(near_oracle)}/{len(structured)} ({100 * len(near_oracle) / n:.0f}%)",
        "mean_ari_all_structured": round(sum(ari) / n, 3),
        "mean_ari_clear": round(sum(clear) / max(len(clear), 1), 3),
        "k_within_1": f"{len(k_ok)}/{len(structured)} ({100 * len(k_ok) / n:.0f}%)",
        "no_structure_reported_weak": f"{len(weak)}/{len(none)}",
        "mean_baseline_ari": round(sum(r["baseline_ari"] for r in structured) / n, 3),
        "mean_oracle_ari": round(sum(r["oracle_ari"] for r in structured) / n, 3),
    }


def _returns_gate_off() -> str:
    """The returns share is no longer a gate candidate (the variant measured as ``widen``)."""
    import segwise.features.selection as selection

    selection.GATED_FAMILIES = tuple(f for f in selection.GATED_FAMILIES if f != "returns")
    return "widen"


def _widening_off() -> str:
    """Weak structure is not widened by category shares (the variant measured as ``returns``)."""
    import segwise.features.selection as selection

    selection.WIDENING_FAMILIES = ()
    return "returns"


def _merge_off() -> str:
    """The chosen k is not checked for over-splitting (the variant measured as ``nomerge``)."""
    import segwise.cluster.select as select

    select.MERGE_OVERSPLIT = False
    return "nomerge"


def _merge_support_off() -> str:
    """The over-split merge is not bounded by the supported range (the variant ``mergeunbounded``)."""
    import segwise.cluster.select as select

    select.MERGE_WITHIN_SUPPORT = False
    return "mergeunbounded"


def _merge_weak_off() -> str:
    """The over-split merge also applies to weak structure (the variant ``mergeweak``)."""
    import segwise.cluster.select as select

    select.MERGE_SKIP_WEAK = False
    return "mergeweak"


def _second_look_off() -> str:
    """A customer table's screen readmits no column by its second look (the variant ``onelook``)."""
    import segwise.cluster.screen as screen

    screen.SECOND_LOOK = False
    return "onelook"


def _shapes_off() -> str:
    """The structure verdict's reference is Gaussian in flat columns and counts too (the variant ``noshapes``)."""
    import segwise.cluster.select as select

    select.KEEP_FLAT_SHAPES = False
    return "noshapes"


def _overdue_on() -> str:
    """The overdue ratio joins the default definition (the variant ``overdue``; seventh pass)."""
    import segwise.defining_columns as defining

    defining.DEFAULT_FAMILIES = (*defining.DEFAULT_FAMILIES, defining.OVERDUE_FAMILY)
    return "overdue"


#: Measured candidates ``--on`` adds to the default (docs/quality.md).
_CANDIDATES = {"overdue": _overdue_on}

#: Selection steps ``--off`` can switch off, for measuring each on its own (docs/quality.md).
_SWITCHES = {"returns-gate": _returns_gate_off, "widening": _widening_off, "merge": _merge_off,
             "merge-support": _merge_support_off, "merge-weak": _merge_weak_off, "second-look": _second_look_off,
             "shapes": _shapes_off}


def code_digest() -> str:
    """A digest of the code a row depends on: segwise's sources and the families and measurements."""
    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "src" / "segwise").rglob("*.py"))
    files += [Path(__file__).with_name(n) for n in ("common.py", "families.py", "measure.py")]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def read_checkpoint(path: Path, key: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Rows of ``path`` (JSON lines) measured under ``key``, by family; other rows are ignored."""
    if not path.exists():
        return {}
    rows = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("key") == key:
            rows[entry["row"]["family"]] = entry["row"]
    return rows


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """The per-family markdown table."""
    out = ["| family | half | structure | customers | true k | segwise k | segwise ARI | baseline k | baseline ARI "
           "| oracle ARI | segwise / oracle | structure verdict | segwise s |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        ratio = (None if r["oracle_ari"] in (None, 0) or r["segwise_ari"] is None
                 else round(r["segwise_ari"] / r["oracle_ari"], 2))
        verdict = r.get("segwise_structure", "–")
        if r.get("segwise_error"):
            verdict = "FAILED: " + r["segwise_error"].replace("|", "/")[:120]
        out.append(f"| {r['family']} | {r['half']} | {r['structure']} | {r['customers']:,} | {_fmt(r['true_k'])} | "
                   f"{_fmt(r['segwise_k'])} | {_fmt(r['segwise_ari'])} | {r['baseline_k']} | "
                   f"{_fmt(r['baseline_ari'])} | {_fmt(r['oracle_ari'])} | {_fmt(ratio, 2)} | {verdict} | "
                   f"{_fmt(r['segwise_s'], 1)} |")
    return "\n".join(out)


def render(record: dict[str, Any]) -> str:
    """The results file in markdown."""
    lines = [f"# segment quality, size {record['size']}, {record['date']}", "",
             f"Machine: {machine_sentence(record['machine'], ('segwise', 'scikit-learn'))}. "
             f"Seed {record['seed']}; {record['seconds']:.0f} s in all.", "",
             "segwise with no flags (`segwise.segment(data)` / `segment(customers=...)`), the seed notebook "
             "baseline (log RFM, k-means, silhouette-best k) and the oracle (best of k-means / Gaussian mixture "
             "at the true k on the family's defining features). ARI against the planted types.", ""]
    if record.get("resumed"):
        lines += [f"Measured in more than one sitting (`--checkpoint`, same code): {', '.join(record['resumed'])} "
                  "came from the checkpoint file; the seconds in all add the seconds they took.", ""]
    if record.get("switched_off"):
        lines += [f"Variant: the default with `{record['switched_off']}` switched off (`--off`).", ""]
    if record.get("switched_on"):
        lines += [f"Variant: the default with `{record['switched_on']}` added (`--on`).", ""]
    lines += [table(record["families"]), ""]
    for swap in record["protocol"]:
        s = swap["held_out"]
        lines += [f"## Development half {swap['dev']}, held-out half {s['half']}", "",
                  f"Held-out families: {', '.join(s['families'])}.", "",
                  f"- ARI >= baseline: {s['at_least_baseline']}",
                  f"- ARI >= 0.9 x oracle: {s['at_least_0.9_oracle']}",
                  f"- mean ARI, clear-structure families: {s['mean_ari_clear']} "
                  f"(all structured: {s['mean_ari_all_structured']}; baseline {s['mean_baseline_ari']}, "
                  f"oracle {s['mean_oracle_ari']})",
                  f"- chosen k within +-1 of the truth: {s['k_within_1']}",
                  f"- no-structure family reported as weak structure: {s['no_structure_reported_weak']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the quality benchmark; return the exit code (1 when segwise failed on a family)."""
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("small", "default", "large"), default="default")
    parser.add_argument("--dev", choices=("A", "B"), default="A", help="the development half (default A)")
    parser.add_argument("--only", choices=("dev", "held-out"), default=None,
                        help="run one half only (while iterating; nothing is recorded)")
    parser.add_argument("--families", default=None, help="comma-separated family names (nothing is recorded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--off", choices=tuple(_SWITCHES), default=None,
                        help="measure the default with one of its selection steps switched off "
                             "(recorded as quality-<size>-<label>; the label defaults to the step's)")
    parser.add_argument("--on", choices=tuple(_CANDIDATES), default=None,
                        help="measure the default with a candidate that is not in it added "
                             "(recorded as quality-<size>-<label>; the label defaults to the candidate's)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a JSON-lines file: each measured family is appended, and families already "
                             "measured there with the same size, seed, variant and code are reused")
    parser.add_argument("--label", default=None,
                        help="a qualifier naming the variant measured: quality-<size>-<label>-<date>-... "
                             "(without it the file is the current default's)")
    args = parser.parse_args(argv)
    if args.off:
        label = _SWITCHES[args.off]()
        args.label = args.label or label
    if args.on:
        label = _CANDIDATES[args.on]()
        args.label = args.label or label
    held = "B" if args.dev == "A" else "A"
    chosen = list(FAMILIES)
    if args.only == "dev":
        chosen = [f for f in chosen if f.half == args.dev]
    elif args.only == "held-out":
        chosen = [f for f in chosen if f.half == held]
    if args.families:
        wanted = set(args.families.split(","))
        unknown = wanted - {f.name for f in FAMILIES}
        if unknown:
            parser.error(f"unknown families: {', '.join(sorted(unknown))}")
        chosen = [f for f in chosen if f.name in wanted]
    started = time.perf_counter()
    key = {"size": args.size, "seed": args.seed, "off": args.off, "on": args.on, "code": code_digest()}
    done = read_checkpoint(args.checkpoint, key) if args.checkpoint else {}
    rows = []
    for fam in chosen:
        if fam.name in done:
            _log(f"{fam.name}: measured before, from {args.checkpoint}")
            rows.append(done[fam.name])
            continue
        _log(f"{fam.name} ({fam.sizes[args.size]:,} customers) ...")
        row = measure_family(fam, args.size, args.seed)
        if args.checkpoint:
            with args.checkpoint.open("a") as out:
                out.write(json.dumps({"key": key, "row": row}) + "\n")
        _log(f"  segwise k={row['segwise_k']} ARI={row['segwise_ari']}  baseline k={row['baseline_k']} "
             f"ARI={row['baseline_ari']}  oracle {row['oracle_ari']}  ({row['total_s']} s)")
        rows.append(row)
    seconds = time.perf_counter() - started
    if done:
        # Resumed families count with the seconds they took when they were measured.
        seconds += sum(r["total_s"] for r in rows if r["family"] in done)
    halves = sorted({r["half"] for r in rows})
    protocol = [{"dev": "B" if h == "A" else "A", "held_out": summarise(rows, h)} for h in halves]
    protocol.sort(key=lambda p: p["dev"] != args.dev)
    record = {"size": args.size, "date": date.today().isoformat(), "seed": args.seed, "dev": args.dev,
              "seconds": round(seconds, 1), "machine": describe_machine(), "families": rows, "protocol": protocol,
              "switched_off": args.off, "switched_on": args.on,
              "resumed": sorted(r["family"] for r in rows if r["family"] in done)}
    markdown = render(record)
    print(markdown)
    if not (args.no_record or args.only or args.families):
        record_named(f"quality-{args.size}" + (f"-{args.label}" if args.label else ""), record, markdown)
    return 1 if any(r.get("segwise_error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
