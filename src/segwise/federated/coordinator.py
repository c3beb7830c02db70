"""The coordinator of federated k-means: rounds, retries, the number of segments.

`FederatedKMeans` talks to N silos (`segwise.federated.transport`) and never sees a
customer row. A run:

1. **session**: every silo says what its log supports (category, discount columns)
   and publishes its key for secure aggregation; the coordinator fixes the feature
   spec every silo can compute and ``as_of`` (given, or the day after the latest
   order of any silo), and each silo builds its features locally;
2. **preparation** from aggregates only: histogram sketches and moment sums of each
   feature column (median, missing share, skewness, winsorising quantiles), then
   sums and cross-products of the imputed, log-transformed, winsorised columns
   (scale, correlation pruning). `segwise.prepare.Preprocessor.fit` (from `ColumnStatistics`)
   turns them into the same fitted preparation a central run stores;
3. **initialisation**: each silo sends the means of local k-means groups (at least
   ``min_group_size`` customers each) with their sizes; the coordinator runs a
   weighted k-means with k-means++ initialisation and 10 restarts over these
   candidates (never over rows) for every candidate k;
4. **Lloyd rounds**: the coordinator broadcasts the centroids of every candidate k at
   once; each silo returns per-centroid counts and sums (and scatter); centroids
   move to sums / counts until they move less than ``tol`` times the mean variance
   of the prepared columns (scikit-learn's rule), or ``max_iter``;
5. **number of segments**: a final round measures every candidate's inertia at its
   final centroids; k is the knee of that aggregated inertia curve (Kneedle, as
   `segwise.cluster.select.knee_point`), or, without a knee, the highest Calinski-Harabasz
   index (computed from the same aggregates);
6. **profiles** from per-segment sketches, the model (`segwise.federated.assemble`),
   and **local assignment**: each silo assigns its own customers and keeps them.

A silo that fails a request is retried ``retries`` times; then it is dropped and the
run continues with the others (recorded in ``record["dropouts"]``). Under secure
aggregation the round is repeated among the survivors with fresh masks (the
survivors re-send the same values, so differential privacy is not spent twice).

Without differential privacy the result is exactly centralised k-means (Lloyd's
algorithm) on the pooled prepared rows from the same initial centroids: the sums are
the same sums. With ``dp_epsilon`` the number of segments must be given, ``as_of``
too, and exactly ``dp_iterations`` Lloyd rounds run (see `segwise.federated.privacy`).
"""

from __future__ import annotations

import math
import numbers
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from segwise.errors import InputError
from segwise.features import FeatureSpec
from segwise.features.base import FeatureColumn
from segwise.federated import protocol
from segwise.federated.columns import SUPPORTED_FAMILIES, agreed_columns
from segwise.federated.assemble import aggregate_metrics, assemble_model, model_to_wire
from segwise.federated.privacy import DEFAULT_DELTA, Accountant, PrivacyPlan, gaussian_sigma
from segwise.federated.silo import prepared_bounds, preprocessor_to_wire
from segwise.federated.sketch import LogGrid, MergedColumns
from segwise.federated.rounds import FederationError, Rounds, summed
from segwise.model import SegmentationModel
from segwise.engines.statistics import ColumnStatistics, ColumnSummaries, TransformedSummary
from segwise.prepare import Preprocessor
from segwise.cluster.select import KSelection, knee_point

__all__ = ["FederatedKMeans", "FederatedResult", "FederationError", "CHOICE_RULE", "SUPPORTED_FAMILIES",
           "check_settings"]

#: How the federated run chooses the number of segments.
CHOICE_RULE = (
    "the knee of the aggregated inertia curve (Kneedle); without a knee, the highest Calinski-Harabasz index "
    "(both from per-segment sums; the silhouette needs distances between customers and is not used)"
)



def check_settings(*, n_segments: Any = "auto", k_range=(2, 12), dp_epsilon: float | None = None,
                   dp_delta: float = DEFAULT_DELTA, dp_iterations: int = 6, as_of: Any = None,
                   min_group_size: int = 5, owner: str = "FederatedKMeans", **_: Any) -> tuple[list[int], PrivacyPlan | None]:
    """Check the settings of a federated run before any silo is contacted.

    Returns the candidate numbers of segments and the privacy plan (None without
    differential privacy).
    """
    plan = None
    if dp_epsilon is not None:
        plan = PrivacyPlan(epsilon=float(dp_epsilon), delta=float(dp_delta), iterations=int(dp_iterations))
        if n_segments == "auto":
            raise InputError(
                "with differential privacy give the number of segments (--segments N): choosing it would "
                "spend privacy budget on every candidate"
            )
        if as_of is None:
            raise InputError(
                "with differential privacy give --as-of: the default (the day after the last order) would "
                "reveal one customer's order date"
            )
    if n_segments == "auto":
        lo, hi = (int(v) for v in k_range)
        if lo < 2 or hi < lo:
            raise InputError(
                f"The 'k_range' parameter of {owner} must be two ints 2 <= low <= high. Got {k_range!r} instead."
            )
        ks = list(range(lo, hi + 1))
    elif isinstance(n_segments, numbers.Integral) and not isinstance(n_segments, bool) and n_segments >= 1:
        ks = [int(n_segments)]
    else:
        raise InputError(
            f"The 'n_segments' parameter of {owner} must be 'auto' or an int in the range [1, inf). "
            f"Got {n_segments!r} instead."
        )
    if not isinstance(min_group_size, numbers.Integral) or min_group_size < 1:
        raise InputError(
            f"The 'min_group_size' parameter of {owner} must be an int in the range [1, inf). "
            f"Got {min_group_size!r} instead."
        )
    return ks, plan


@dataclass
class FederatedResult:
    """What a federated run produced.

    Attributes
    ----------
    model : SegmentationModel
        The global model (saved like any other with ``model.save(path)``).
    initial_centroids : dict of int to ndarray
        The initial centroids of every candidate k (cluster order of ``centroids``).
    centroids : ndarray
        Final centroids of the chosen k, in cluster order (``label_map`` maps them to
        segment ids).
    record : dict
        Silos, rounds, dropouts, the choice of k, privacy accounting: JSON-able.
    """

    model: SegmentationModel
    initial_centroids: dict[int, np.ndarray]
    centroids: np.ndarray
    record: dict[str, Any]

    @property
    def label_map(self) -> np.ndarray:
        return self.model.segmenter.label_map_


@dataclass
class _Round:
    name: str
    started: float = field(default_factory=time.perf_counter)


class FederatedKMeans:
    """Coordinator of a federated k-means segmentation (see the module docstring).

    Parameters
    ----------
    silos : sequence of silo clients
        `segwise.federated.transport.HttpSilo` or `LocalSilo`, sharing one wire log.
    n_segments : int or "auto"
    k_range : tuple of two ints
        Candidates for ``"auto"``.
    features : list of str, optional
        Feature families or columns defining the segments (default rfm and affinity;
        see `SUPPORTED_FAMILIES`; their categorical columns are left out with a note,
        `segwise.federated.columns`).
    exclude : list of str, optional
    weights, preprocessing, names
        As for `segwise.Segmenter`.
    as_of : str or date, optional
        Observation date (required with ``dp_epsilon``).
    random_state : int
    secure_aggregation : bool
        Mask every summed aggregate pairwise (`segwise.federated.secagg`).
    dp_epsilon : float, optional
        Differential privacy budget for every customer; ``dp_delta`` its delta and
        ``dp_iterations`` the fixed number of Lloyd rounds.
    max_iter, tol : Lloyd limits without differential privacy (scikit-learn's meaning).
    n_candidates : int, optional
        Local groups per silo for the initialisation (default 3 x the largest k).
    min_group_size : int
        No sum over fewer customers leaves a silo (without differential privacy).
    retries : int
        Repeats of a failed request before a silo is dropped.
    timeout : float
        Seconds a silo may take to answer one request (set on the clients).
    on_round : callable, optional
        Called with the name of each round before it starts (progress, tests).
    """

    def __init__(self, silos: Sequence, *, n_segments: int | str = "auto", k_range=(2, 12), features=None,
                 exclude=None, weights=None, preprocessing=None, names=None, as_of=None, random_state: int = 0,
                 secure_aggregation: bool = False, dp_epsilon: float | None = None, dp_delta: float = DEFAULT_DELTA,
                 dp_iterations: int = 6, max_iter: int = 100, tol: float = 1e-4, n_candidates: int | None = None,
                 min_group_size: int = 5, retries: int = 2, retry_wait: float = 0.5,
                 on_round: Callable[[str], None] | None = None) -> None:
        self.silos = list(silos)
        self.n_segments = n_segments
        self.k_range = k_range
        self.features = features
        self.exclude = exclude
        self.weights = weights
        self.preprocessing = preprocessing
        self.names = names
        self.as_of = as_of
        self.random_state = random_state
        self.secure_aggregation = secure_aggregation
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.dp_iterations = dp_iterations
        self.max_iter = max_iter
        self.tol = tol
        self.n_candidates = n_candidates
        self.min_group_size = min_group_size
        self.retries = retries
        self.retry_wait = retry_wait
        self.on_round = on_round

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> tuple[list[int], PrivacyPlan | None]:
        owner = type(self).__name__
        if not self.silos:
            raise InputError(f"{owner} needs at least one silo (--silo URL)")
        names = [s.name for s in self.silos]
        if len(set(names)) != len(names):
            raise InputError(f"silo names must be unique; got {', '.join(names)}")
        if self.secure_aggregation and len(self.silos) < 2:
            raise InputError("secure aggregation needs at least two silos")
        return check_settings(
            n_segments=self.n_segments, k_range=self.k_range, dp_epsilon=self.dp_epsilon, dp_delta=self.dp_delta,
            dp_iterations=self.dp_iterations, as_of=self.as_of, min_group_size=self.min_group_size, owner=owner,
        )

    # ------------------------------------------------------------------ rounds

    def _round(self, path: str, name: str, body, *, masked: bool = False,
               round_fields: bool = True) -> dict[str, dict[str, Any]]:
        return self._rounds.send(path, name, body, masked=masked, round_fields=round_fields)

    def _noise_floor(self, answers: Mapping[str, dict[str, Any]]) -> float:
        """Four standard deviations of the noise of a summed count (0 without privacy)."""
        sigmas = [float((a.get("privacy") or {}).get("sigma") or 0.0) for a in answers.values()]
        return 4.0 * math.sqrt(sum(s * s for s in sigmas))

    def _charge(self, release: str, answers: Mapping[str, dict[str, Any]]) -> None:
        if self._accountant is None:
            return
        infos = [a.get("privacy") or {} for a in answers.values()]
        sensitivities = [i["sensitivity"] for i in infos if "sensitivity" in i]
        if not sensitivities:
            raise FederationError(f"the silos did not report the noise of the {release!r} release")
        self._accountant.charge(release, max(sensitivities))
        self._record["noise"].append({"release": release, "sigma": {
            name: (a.get("privacy") or {}).get("sigma") for name, a in answers.items()}})

    # ------------------------------------------------------------------ steps

    def _open(self, plan: PrivacyPlan | None) -> tuple[FeatureSpec, date]:
        config = protocol.SessionConfig(
            grid=LogGrid(bins_per_decade=10 if plan else 50).to_dict(),
            profile_grid=LogGrid(bins_per_decade=10).to_dict(),
            min_group_size=int(self.min_group_size), secure_aggregation=bool(self.secure_aggregation),
            privacy=plan.to_dict() if plan else None,
        )
        self._config = config
        answers = self._round("/session", "session", {"config": config.model_dump()}, round_fields=False)
        self._rounds.public_keys = {name: a["public_key"] for name, a in answers.items()}
        if self.secure_aggregation and len(answers) < 2:
            raise FederationError("secure aggregation needs at least two silos; only one answered")
        spec = FeatureSpec(
            families=[], has_category=all(a["has_category"] for a in answers.values()),
            has_discount=all(a["has_discount"] for a in answers.values()),
            has_time_of_day=all(a["has_time_of_day"] for a in answers.values()),
        )
        if self.as_of is not None:
            from segwise.features.build import parse_as_of

            as_of = parse_as_of(self.as_of)
        else:
            as_of = max(date.fromisoformat(a["last_order_date"]) for a in answers.values()) + timedelta(days=1)
        return spec, as_of

    def _prepare(self, columns: list[str], docs: dict[str, FeatureColumn]) -> Preprocessor:
        grid = LogGrid.from_dict(self._config.grid)
        answers = self._round("/rounds/prepare", "prepare", {}, masked=self.secure_aggregation)
        self._charge("prepare", answers)
        merged = MergedColumns(summed(answers), grid, noise_floor=self._noise_floor(answers))
        moments, kept = merged.moments()
        observed = merged.n_observed()[0]
        empty = [c for c, n in zip(columns, observed) if n <= 0]
        if empty and self._plan is not None:
            raise FederationError(
                f"too few customers for epsilon {self._plan.epsilon:g}: no histogram bin of "
                f"{', '.join(empty)} stands above the privacy noise; give a larger --dp-epsilon or more customers"
            )
        self._n_rows = max(float(merged.n_rows()[0]), 1.0)
        self._missing_share = dict(zip(columns, merged.missing[0] / self._n_rows))
        # A silo withholds the moments of a column it has fewer than min_group_size
        # values of; scale the rest up to every observed value.
        scale = np.where(kept[0] > 0, observed / np.maximum(kept[0], 1e-12), 0.0)
        summaries = ColumnSummaries(
            columns=columns, n_rows=float(merged.n_rows()[0]), n_missing=merged.missing[0],
            n_negative=merged.n_negative()[0], moments=(moments[0][:, :3] * scale[:, None]).T,
            quantiles=lambda j, p, value, count: merged.quantiles(j, p, value, count),
        )

        def transformed(plan: dict[str, Any]) -> TransformedSummary:
            wire_plan = {key: (np.asarray(v).tolist() if not isinstance(v, list) else v) for key, v in plan.items()}
            wire_plan["log_mask"] = [bool(v) for v in plan["log_mask"]]
            answers_t = self._round("/rounds/transformed", "transformed", {"plan": wire_plan},
                                    masked=self.secure_aggregation)
            self._charge("transformed", answers_t)
            total = summed(answers_t)
            middle = np.asarray(next(iter(answers_t.values()))["middle"], dtype=np.float64)
            n = float(total["n"][0])
            d = len(plan["columns"])
            cross_u = np.zeros((d, d))
            cross_u[np.triu_indices(d)] = total["cross_upper"]
            cross_u = cross_u + np.triu(cross_u, 1).T
            sums_u = total["sums"]
            sums = sums_u + n * middle
            cross = cross_u + np.outer(middle, sums_u) + np.outer(sums_u, middle) + n * np.outer(middle, middle)
            self._transformed = TransformedSummary(n_rows=n, sums=sums, cross=cross)
            return self._transformed

        params = dict(self.preprocessing or {})
        return Preprocessor(
            numeric_columns=columns, categorical_columns=[], weights=self.weights,
            families={c: d.family for c, d in docs.items()},
            log_columns=[c for c, d in docs.items() if d.log_scale], random_state=self.random_state, **params,
        ).fit(ColumnStatistics(summaries, transformed))

    def _prepared_variance(self, pre: Preprocessor) -> float:
        """Mean variance of the prepared columns (scikit-learn's scale of ``tol``)."""
        summary = self._transformed
        mean = summary.sums / summary.n_rows
        var = np.maximum(np.diag(summary.cross) / summary.n_rows - mean**2, 0.0)
        numeric = var / pre.scale_**2
        share = np.array([self._missing_share[c] for c in pre.indicator_columns_])
        variances = np.concatenate([numeric[pre.numeric_kept_], share * (1 - share)]) * pre.weights_**2
        return float(variances.mean())

    def _initial_centroids(self, pre: Preprocessor, ks: list[int]) -> dict[int, np.ndarray]:
        from sklearn.cluster import KMeans

        n_candidates = self.n_candidates or 3 * max(ks)
        if self._plan is not None and self.n_candidates is None:
            # Noisy group means are useful only for groups well above the noise: aim
            # for local groups of about 4 sigma customers, at most 2k of them.
            low, high = prepared_bounds(pre)
            sigma = gaussian_sigma(math.sqrt(1.0 + float((((high - low) / 2) ** 2).sum())),
                                   self._plan.rho("candidates"))
            per_silo = self._n_rows / max(len(self._rounds.active), 1)
            n_candidates = int(max(1, min(2 * max(ks), per_silo // (4 * sigma))))
        answers = self._round("/rounds/candidates", "candidates", {
            "preprocessor": preprocessor_to_wire(pre), "n_candidates": int(n_candidates),
            "seed": int(self.random_state),
        })
        self._charge("candidates", answers)
        points, weights = [], []
        for silo_name in sorted(answers):
            answer = answers[silo_name]
            arrays = protocol.decode_arrays(answer["aggregate"]["arrays"])
            counts, sums = arrays["counts"], arrays["sums"].reshape(len(arrays["counts"]), -1)
            middle = np.asarray(answer["middle"], dtype=np.float64)
            floor = float(self.min_group_size)
            sigma = (answer.get("privacy") or {}).get("sigma")
            if sigma is not None:
                floor = max(floor, 2.0 * float(sigma))
                self._record.setdefault("candidate_sigma", {})[silo_name] = float(sigma)
            keep = counts >= floor
            points.append(sums[keep] / counts[keep][:, None] + middle)
            weights.append(counts[keep])
        pool = np.vstack(points) if points else np.zeros((0, len(pre.prepared_names_)))
        pool_weights = np.concatenate(weights) if weights else np.zeros(0)
        low, high = prepared_bounds(pre)
        pool = np.clip(pool, low, high)
        self._record["candidates"] = {"n_candidates_per_silo": int(n_candidates), "pooled": int(len(pool))}
        usable = [k for k in ks if k <= len(pool)]
        if not usable:
            raise FederationError(
                f"the silos sent {len(pool)} usable candidate centroid(s), fewer than the {min(ks)} segments asked "
                "for; ask for fewer segments or lower min_group_size"
            )
        initial = {}
        for k in usable:
            # Weighted k-means++ with restarts on the candidates (a few dozen points: cheap);
            # the best restart's centroids start the federated Lloyd rounds.
            model = KMeans(n_clusters=k, init="k-means++", n_init=10, random_state=int(self.random_state)).fit(
                pool, sample_weight=pool_weights)
            initial[k] = model.cluster_centers_.astype(np.float64)
        return initial

    def _lloyd_round(self, name: str, sets: dict[int, np.ndarray], *, scatter: bool) -> dict[int, dict[str, np.ndarray]]:
        body = {"centroids": {str(k): protocol.encode_array(c) for k, c in sets.items()}, "with_scatter": scatter}
        answers = self._round("/rounds/lloyd", name, body, masked=self.secure_aggregation)
        self._charge("lloyd", answers)
        total = summed(answers)
        middle = np.asarray(next(iter(answers.values()))["middle"], dtype=np.float64)
        out = {}
        for k, centers in sets.items():
            counts = total[f"{k}/counts"]
            kept = total.get(f"{k}/kept", counts)
            sums = total[f"{k}/sums"].reshape(centers.shape) + kept[:, None] * middle
            stats = {"counts": counts, "kept": kept, "sums": sums}
            for key in ("inertia", "distance"):
                if f"{k}/{key}" in total:
                    stats[key] = total[f"{k}/{key}"]
            withheld = counts - kept
            if (withheld > 0.5).any():
                self._record["withheld"].append({"round": name, "k": k, "customers": float(withheld.sum())})
            out[k] = stats
        return out

    def _lloyd(self, pre: Preprocessor, initial: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        centroids = {k: c.copy() for k, c in initial.items()}
        low, high = prepared_bounds(pre)
        if self._plan is not None:
            for iteration in range(self._plan.iterations):
                stats = self._lloyd_round(f"lloyd-{iteration + 1}", centroids, scatter=False)
                for k, s in stats.items():
                    ok = s["counts"] >= 1.0
                    update = np.where(ok[:, None], s["sums"] / np.where(ok, s["counts"], 1.0)[:, None], centroids[k])
                    centroids[k] = np.clip(update, low, high)
            self._record["lloyd"] = {"iterations": self._plan.iterations, "converged": None}
            return centroids
        tolerance = float(self.tol) * self._prepared_variance(pre)
        active = set(centroids)
        iterations = {k: 0 for k in centroids}
        for iteration in range(int(self.max_iter)):
            if not active:
                break
            stats = self._lloyd_round(f"lloyd-{iteration + 1}", {k: centroids[k] for k in sorted(active)},
                                      scatter=False)
            for k, s in stats.items():
                ok = s["kept"] > 0
                new = np.where(ok[:, None], s["sums"] / np.where(ok, s["kept"], 1.0)[:, None], centroids[k])
                shift = float(((new - centroids[k]) ** 2).sum())
                centroids[k] = new
                iterations[k] = iteration + 1
                if shift <= tolerance:
                    active.discard(k)
        self._record["lloyd"] = {"iterations": iterations, "converged": {k: k not in active for k in centroids},
                                 "tolerance": tolerance}
        return centroids

    def _choose(self, centroids: dict[int, np.ndarray]) -> tuple[int, KSelection | None, dict[int, dict]]:
        if self._plan is not None:
            (k,) = centroids
            return k, None, {}
        final = self._lloyd_round("final", centroids, scatter=True)
        candidates = []
        for k in sorted(final):
            s = final[k]
            metrics = aggregate_metrics(centroids[k], s["counts"], s.get("inertia"), s.get("distance"))
            candidates.append({
                "k": k, "inertia": float(s["inertia"].sum()), "calinski_harabasz": metrics["calinski_harabasz"],
                "davies_bouldin": metrics["davies_bouldin"],
                "smallest_share": float(s["counts"].min() / max(s["counts"].sum(), 1.0)),
            })
        if len(candidates) == 1:
            return candidates[0]["k"], None, final
        knee = knee_point([c["k"] for c in candidates], [c["inertia"] for c in candidates])
        if knee is not None:
            chosen, reason = knee, f"k={knee} is the knee of the aggregated inertia curve"
        else:
            best = max(candidates, key=lambda c: c["calinski_harabasz"] or -np.inf)
            chosen = best["k"]
            reason = f"the inertia curve has no knee; k={chosen} has the highest Calinski-Harabasz index"
        selection = KSelection(candidates=candidates, chosen=chosen, knee=knee, rule=CHOICE_RULE, reason=reason)
        return chosen, selection, final

    # ------------------------------------------------------------------ run

    def fit(self) -> FederatedResult:
        """Run the whole federation (see the module docstring) and return its result."""
        ks, plan = self._check_params()
        self._plan = plan
        self._accountant = Accountant(plan) if plan is not None else None
        started = time.perf_counter()
        self._record: dict[str, Any] = {
            "silos": [s.name for s in self.silos], "secure_aggregation": bool(self.secure_aggregation),
            "rounds": [], "dropouts": [], "withheld": [], "noise": [], "min_group_size": int(self.min_group_size),
        }
        self._rounds = Rounds(self.silos, session=uuid.uuid4().hex, retries=int(self.retries),
                              retry_wait=float(self.retry_wait), minimum=2 if self.secure_aggregation else 1,
                              on_round=self.on_round, record=self._record)
        spec, as_of = self._open(plan)
        columns, docs, notes = agreed_columns(spec, self.features, self.exclude)
        self._record["notes"] = notes
        spec.families = [f for f in SUPPORTED_FAMILIES if any(d.family == f for d in docs.values())]
        self._round("/features", "features", {"spec": spec.to_dict(), "as_of": str(as_of), "columns": columns},
                    round_fields=False)
        pre = self._prepare(columns, docs)
        initial = self._initial_centroids(pre, ks)
        centroids = self._lloyd(pre, initial)
        k, selection, final = self._choose(centroids)
        chosen = centroids[k]
        profile_answers = self._round("/rounds/profile", "profile", {"model": {
            "centroids": protocol.encode_array(chosen), "columns": columns}}, masked=self.secure_aggregation)
        self._charge("profile", profile_answers)
        segment_sketches = MergedColumns(summed(profile_answers), LogGrid.from_dict(self._config.profile_grid),
                                      noise_floor=self._noise_floor(profile_answers))
        if k in final:
            s = final[k]
            metrics = aggregate_metrics(chosen, s["counts"], s.get("inertia"), s.get("distance"))
            inertia = float(s["inertia"].sum())
        else:
            metrics = aggregate_metrics(chosen, np.zeros(k), None, None)
            inertia = None
        privacy = self._accountant.summary() if self._accountant is not None else None
        self._record.update({
            "as_of": str(as_of), "columns": columns, "n_segments": int(k),
            "selection": selection.to_dict() if selection is not None else None,
            "initial_centroids": {str(kk): c.tolist() for kk, c in initial.items()},
            "silos_used": sorted(self._rounds.active),
        })
        model = assemble_model(
            preprocessor=pre, centroids=chosen, segment_sketches=segment_sketches, columns=columns, docs=docs, spec=spec,
            as_of=as_of, inertia=inertia, metrics=metrics, selection=selection,
            segmenter_params={
                "method": "kmeans", "n_segments": self.n_segments, "k_range": list(self.k_range),
                "features": columns, "exclude": None, "weights": self.weights, "preprocessing": self.preprocessing,
                "method_params": None, "value_col": None,
                "names": {str(key): v for key, v in self.names.items()} if self.names else None,
                "random_state": self.random_state,
            },
            names=self.names, notes=notes,
            metadata={
                "source": "federated: " + ", ".join(sorted(self._rounds.active)),
                "federated": {"silos": sorted(self._rounds.active), "dropped": [d["silo"] for d in self._record["dropouts"]],
                              "secure_aggregation": bool(self.secure_aggregation), "rule": CHOICE_RULE},
                "privacy": _privacy_statement(privacy),
            },
        )
        self._round("/assign", "assign", {"model": model_to_wire(model)}, round_fields=False)
        closed = self._round("/close", "close", {}, round_fields=False)
        self._record["privacy"] = privacy
        self._record["silo_privacy"] = {name: a.get("privacy") for name, a in closed.items()}
        self._record["seconds"] = round(time.perf_counter() - started, 3)
        return FederatedResult(model=model, initial_centroids=initial, centroids=chosen, record=self._record)


def _privacy_statement(privacy: dict[str, Any] | None) -> dict[str, Any] | None:
    if privacy is None:
        return None
    return {
        "mechanism": "gaussian", "accounting": "zCDP", "epsilon": privacy["epsilon"], "delta": privacy["delta"],
        "epsilon_spent": privacy["epsilon_spent"], "rho_spent": privacy["rho_spent"],
        "unit": "one customer (all of their transactions)",
    }
