"""``segwise federated``: silos, a coordinator, and a one-command local simulation."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Optional

import typer

from segwise.cli.app import app, err, out
from segwise.cli.errors import handle_errors
from segwise.cli.options import AsOfOpt, CustomersOpt, DebugOpt, LoadOptions, with_option_sets
from segwise.cli.parsers import parse_segments, split_list
from segwise.errors import InputError

federated_app = typer.Typer(
    help="Segment customers across data silos without pooling their rows (federated k-means).",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(federated_app, name="federated")

SegmentsOpt = Annotated[str, typer.Option("--segments", help="Number of segments, or 'auto' (knee of the inertia).")]
KMinOpt = Annotated[int, typer.Option("--k-min", help="Smallest number of segments tried by auto.")]
KMaxOpt = Annotated[int, typer.Option("--k-max", help="Largest number of segments tried by auto.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
EpsilonOpt = Annotated[
    Optional[float],
    typer.Option("--dp-epsilon", help="Differential privacy budget epsilon per customer (needs --segments, --as-of)."),
]
DeltaOpt = Annotated[float, typer.Option("--dp-delta", help="delta of the (epsilon, delta) guarantee.")]
IterationsOpt = Annotated[int, typer.Option("--dp-iterations", help="Lloyd rounds under differential privacy.")]
SecureOpt = Annotated[
    bool, typer.Option("--secure-aggregation", help="Mask silo aggregates pairwise: the coordinator sees only sums.")
]
FeaturesOpt = Annotated[
    Optional[str], typer.Option("--features", help="Families or columns defining the segments (default rfm,affinity).")
]
ExcludeOpt = Annotated[Optional[str], typer.Option("--exclude", help="Families or columns to leave out.")]
MinGroupOpt = Annotated[
    int, typer.Option("--min-group-size", help="No sum over fewer customers leaves a silo (without DP).")
]


def _federated_params(segments, k_min, k_max, as_of, dp_epsilon, dp_delta, dp_iterations, secure, features,
                      exclude, min_group_size) -> dict[str, Any]:
    return {
        "n_segments": parse_segments(segments), "k_range": (k_min, k_max), "as_of": as_of,
        "dp_epsilon": dp_epsilon, "dp_delta": dp_delta, "dp_iterations": dp_iterations,
        "secure_aggregation": secure, "features": split_list(features), "exclude": split_list(exclude),
        "min_group_size": min_group_size,
    }


def _report(result, assignments=None) -> None:
    from segwise.cli.core import _segments_table

    model = result.model
    n = len(assignments) if assignments is not None else model.metadata.get("n_customers", 0)
    out.print(_segments_table(SimpleNamespace(
        n_segments=model.segmenter.n_segments_, profiles=model.profiles, assignments=range(n))))
    record = result.record
    selection = record.get("selection")
    if selection:
        out.print(f"number of segments: {selection['reason']}", highlight=False, soft_wrap=True)
    for drop in record.get("dropouts", []):
        out.print(f"silo {drop['silo']} dropped out in round {drop['round']} after {drop['tries']} tries; "
                  "the run continued with the others", highlight=False, soft_wrap=True)
    privacy = record.get("privacy")
    if privacy:
        out.print(
            f"differential privacy: epsilon spent {privacy['epsilon_spent']:.6g} of {privacy['epsilon']:g} "
            f"(delta {privacy['delta']:g}, Gaussian mechanism, zCDP accounting, per customer)",
            highlight=False, soft_wrap=True,
        )


@federated_app.command("silo")
@handle_errors
@with_option_sets
def silo_command(
    data: Annotated[Path, typer.Argument(help="This silo's transaction log.")],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 takes a free one).")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    name: Annotated[Optional[str], typer.Option("--name", help="Silo name (default: the file name).")] = None,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Where this silo writes its own assignments.")
    ] = None,
    noise_seed: Annotated[
        Optional[int], typer.Option("--noise-seed", help="Seed of the privacy noise (tests only: it reveals the noise).")
    ] = None,
    load: LoadOptions = LoadOptions(),
    debug: DebugOpt = False,
) -> None:
    """Serve one silo: its customers stay here; only aggregates answer the coordinator.

    Prints the URL once it listens; each run's assignments of this silo's customers are
    written to --out/assignments.parquet. Stop it with Ctrl-C (or SIGTERM).
    """
    from segwise.data import load_transactions
    from segwise.federated.app import serve_silo
    from segwise.federated.silo import Silo

    if not 0 <= port <= 65535:
        raise InputError(f"--port must be between 0 and 65535, got {port}")
    silo_name = name or data.stem
    transactions = load_transactions(str(data), **load.transactions_kwargs())
    silo = Silo(transactions, name=silo_name, out_dir=out_dir or Path(f"segwise-silo-{silo_name}"),
                noise_seed=noise_seed)

    def ready(url: str) -> None:
        out.print(f"segwise silo {silo_name} listening on {url}", highlight=False, soft_wrap=True)
        out.file.flush()

    try:
        serve_silo(silo, host=host, port=port, on_ready=ready)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None


@federated_app.command("coordinator")
@handle_errors
def coordinator_command(
    silo: Annotated[list[str], typer.Option("--silo", help="URL of a silo (repeat for each silo).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("segwise-federated"),
    segments: SegmentsOpt = "auto",
    k_min: KMinOpt = 2,
    k_max: KMaxOpt = 12,
    seed: SeedOpt = 0,
    as_of: AsOfOpt = None,
    dp_epsilon: EpsilonOpt = None,
    dp_delta: DeltaOpt = 1e-6,
    dp_iterations: IterationsOpt = 6,
    secure_aggregation: SecureOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    min_group_size: MinGroupOpt = 5,
    retries: Annotated[int, typer.Option("--retries", help="Repeats of a failed request before a silo is dropped.")] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a silo may take per request.")] = 300.0,
    debug: DebugOpt = False,
) -> None:
    """Coordinate federated k-means over running silos (segwise federated silo).

    Writes model.segwise, wire_log.jsonl (every message exchanged) and federated.json
    (rounds, dropouts, choice of k, privacy accounting) into --out; each silo writes
    its own customers' assignments where it runs.
    """
    from segwise.federated.coordinator import FederatedKMeans
    from segwise.federated.transport import HttpSilo, SiloUnavailable, WireLog
    from segwise.outputs import check_output_dir, commit_outputs

    from segwise.federated.coordinator import check_settings

    out_dir = check_output_dir(out_dir)
    params = _federated_params(segments, k_min, k_max, as_of, dp_epsilon, dp_delta, dp_iterations,
                               secure_aggregation, features, exclude, min_group_size)
    check_settings(**params)
    for url in silo:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--silo takes a URL like http://127.0.0.1:8765, got {url!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    partial_log = out_dir / ".wire_log-coordinator.jsonl"
    wire_log = WireLog(partial_log)
    try:
        clients = []
        for url in silo:
            try:
                info = HttpSilo(url, wire_log, timeout=timeout).call("/info")
            except SiloUnavailable as exc:
                raise InputError(f"{exc}; is `segwise federated silo` running there?") from None
            clients.append(HttpSilo(url, wire_log, name=str(info["name"]), timeout=timeout))
        result = FederatedKMeans(clients, random_state=seed, retries=retries, **params).fit()
    except BaseException:
        partial_log.unlink(missing_ok=True)
        raise
    commit_outputs(out_dir, {
        "model.segwise": lambda p: result.model.save(p),
        "wire_log.jsonl": lambda p: partial_log.replace(p),
        "federated.json": lambda p: p.write_text(json.dumps(_clean(result.record), indent=1, allow_nan=False)),
    }, last="federated.json")
    _report(result)
    out.print(f"outputs written to {out_dir}/ (model.segwise, wire_log.jsonl, federated.json); each silo wrote its "
              "own assignments", highlight=False, soft_wrap=True)


@federated_app.command("simulate")
@handle_errors
@with_option_sets
def simulate_command(
    data: Annotated[Path, typer.Argument(help="Transaction log to split into silos.")],
    silos: Annotated[int, typer.Option("--silos", help="Number of silos (processes on 127.0.0.1).")] = 4,
    split: Annotated[str, typer.Option("--split", help="random, region (needs --customers) or skewed.")] = "random",
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("segwise-federated"),
    customers: CustomersOpt = None,
    segments: SegmentsOpt = "auto",
    k_min: KMinOpt = 2,
    k_max: KMaxOpt = 12,
    seed: SeedOpt = 0,
    as_of: AsOfOpt = None,
    dp_epsilon: EpsilonOpt = None,
    dp_delta: DeltaOpt = 1e-6,
    dp_iterations: IterationsOpt = 6,
    secure_aggregation: SecureOpt = False,
    features: FeaturesOpt = None,
    exclude: ExcludeOpt = None,
    min_group_size: MinGroupOpt = 5,
    load: LoadOptions = LoadOptions(),
    debug: DebugOpt = False,
) -> None:
    """Simulate a federation locally: split DATA into silo processes and segment across them.

    Writes assignments.parquet (customer_id, segment_id, segment_name, confidence, silo),
    model.segwise, wire_log.jsonl and federated.json into --out; each silo's own log and
    assignments stay under --out/silos/.
    """
    from segwise.federated.simulate import simulate

    params = _federated_params(segments, k_min, k_max, as_of, dp_epsilon, dp_delta, dp_iterations,
                               secure_aggregation, features, exclude, min_group_size)
    err.print(f"starting {silos} silo processes on 127.0.0.1 ({split} split) ...", highlight=False)
    simulation = simulate(str(data), out_dir=out_dir, n_silos=silos, split=split,
                          customers=str(customers) if customers is not None else None, seed=seed,
                          load_options=load.transactions_kwargs(), **params)
    sizes = ", ".join(f"{name} {n:,}" for name, n in simulation.silo_sizes.items())
    out.print(f"silos (customers): {sizes}", highlight=False, soft_wrap=True)
    _report(simulation.result, simulation.assignments)
    out.print(f"outputs written to {out_dir}/ (assignments.parquet, model.segwise, wire_log.jsonl, federated.json)",
              highlight=False, soft_wrap=True)


def _clean(value: Any) -> Any:
    from segwise.profile import _clean_json

    return _clean_json(value)
