"""A silo: one data holder's side of federated segmentation.

A `Silo` holds one transaction log and answers the coordinator's rounds with
aggregates only (see `segwise.federated.protocol` for the messages):

``open_session``
    what the log can support (category, discount columns), its public key for
    secure aggregation, and the day of its last order (only without differential
    privacy: it is one customer's order date);
``features``
    builds the agreed features at the agreed ``as_of``, locally; nothing is returned
    but the column names;
``prepare`` / ``transformed``
    histogram sketches and moment sums of the feature columns, then sums and
    cross-products of the imputed, de-skewed, winsorised columns;
``candidates``
    means of local k-means groups of at least ``min_group_size`` customers, the
    candidates for the global k-means++ initialisation;
``lloyd``
    per-centroid counts and sums (and scatter) for each broadcast set of centroids;
``profile``
    per-segment sketches of the feature columns, for profiles and names;
``assign``
    assigns its own customers with the final model and writes them to its own
    output directory; nothing about them goes back.

No sum over fewer than ``min_group_size`` customers leaves the silo without
differential privacy (it is withheld and the count of what was withheld is sent);
with differential privacy every release is noised by the silo itself, under its own
`segwise.federated.privacy.Accountant`, and a repeated round (after another silo
dropped out) re-sends the same noisy values rather than spending budget again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segwise.cluster.kmeans import squared_distances
from segwise.errors import InputError
from segwise.features import FeatureSpec, build_features
from segwise.federated import protocol, secagg
from segwise.federated.privacy import Accountant, PrivacyPlan, add_noise
from segwise.federated.sketch import LogGrid, column_statistics
from segwise.prepare import Preprocessor

__all__ = ["Silo", "prepared_bounds"]


def prepared_bounds(preprocessor: Preprocessor) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature bounds of the prepared matrix: winsorised columns scaled and weighted,
    indicators in [0, weight]. These are the clipping bounds of differential privacy."""
    kept = preprocessor.numeric_kept_
    low = (preprocessor.clip_low_ - preprocessor.center_) / preprocessor.scale_
    high = (preprocessor.clip_high_ - preprocessor.center_) / preprocessor.scale_
    n_indicators = len(preprocessor.indicator_columns_)
    lo = np.concatenate([low[kept], np.zeros(n_indicators)]) * preprocessor.weights_
    hi = np.concatenate([high[kept], np.ones(n_indicators)]) * preprocessor.weights_
    return np.minimum(lo, hi), np.maximum(lo, hi)


def preprocessor_from_wire(data: dict[str, Any]) -> Preprocessor:
    return Preprocessor.from_state(data["meta"], protocol.decode_arrays(data["arrays"]))


def preprocessor_to_wire(preprocessor: Preprocessor) -> dict[str, Any]:
    meta, arrays = preprocessor.to_state()
    return {"meta": meta, "arrays": protocol.encode_arrays(arrays)}


@dataclass
class _Session:
    config: protocol.SessionConfig
    keys: secagg.KeyPair
    accountant: Accountant | None
    rng: np.random.Generator
    features: pd.DataFrame | None = None
    columns: list[str] = field(default_factory=list)
    preprocessor: Preprocessor | None = None
    prepared: np.ndarray | None = None
    released: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def private(self) -> bool:
        return self.accountant is not None


class Silo:
    """One data holder: its transaction log, and the answers it gives the coordinator.

    Parameters
    ----------
    transactions : Transactions
        The silo's cleaned log (`segwise.load_transactions`).
    name : str
        Name of the silo (in the wire log, the masks' order and the assignments).
    out_dir : path
        Where `assign` writes this silo's ``assignments.parquet``.
    noise_seed : int, optional
        Seed of the differential-privacy noise (default: fresh entropy). Whoever knows
        the seed can remove the noise: set it for reproducible tests only.
    """

    def __init__(self, transactions, *, name: str, out_dir: str | Path, noise_seed: int | None = None) -> None:
        self.transactions = transactions
        self.name = name
        self.out_dir = Path(out_dir)
        self.noise_seed = noise_seed
        self.sessions: dict[str, _Session] = {}

    # ------------------------------------------------------------------ helpers

    def _session(self, session_id: str) -> _Session:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise InputError(f"silo {self.name}: no session {session_id!r}; the coordinator must open one first") from None

    def _mask(self, session: _Session, request: protocol.RoundRequest) -> protocol.MaskContext | None:
        if not session.config.secure_aggregation:
            return None
        if len(request.peers) < 2 or self.name not in request.peers:
            raise InputError(
                f"silo {self.name}: secure aggregation needs at least two participants including this silo; "
                f"round {request.round} names {len(request.peers)}"
            )
        peers = {name: int(key, 16) for name, key in request.peers.items()}
        label = f"{request.session}|{request.round}|{request.attempt}|{','.join(sorted(peers))}"
        return protocol.MaskContext(me=self.name, keys=session.keys, peers=peers, label=label)

    def _release(self, session: _Session, request: protocol.RoundRequest, release: str, sensitivity: float,
                 compute) -> dict[str, Any]:
        """Compute (or reuse, for a repeated round) the arrays of one release, noise and pack them."""
        arrays = session.released.get(request.round)
        info: dict[str, Any] = {}
        if arrays is None:
            arrays = compute()
            if session.private:
                sigma = session.accountant.charge(release, sensitivity)
                arrays = add_noise(arrays, sigma, session.rng)
                info = {"release": release, "sigma": sigma, "sensitivity": sensitivity}
            session.released[request.round] = arrays
        elif session.private:
            info = {"release": release, "repeated": True}
        return {"aggregate": protocol.pack_aggregate(arrays, self._mask(session, request)), "privacy": info}

    def _require_features(self, session: _Session) -> pd.DataFrame:
        if session.features is None:
            raise InputError(f"silo {self.name}: features have not been built in this session yet")
        return session.features

    def _require_prepared(self, session: _Session) -> np.ndarray:
        if session.prepared is None:
            raise InputError(f"silo {self.name}: no preparation has been agreed in this session yet")
        return session.prepared

    # ------------------------------------------------------------------ rounds

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "protocol_version": protocol.PROTOCOL_VERSION}

    def open_session(self, request: protocol.SessionRequest) -> dict[str, Any]:
        config = request.config
        if config.protocol_version != protocol.PROTOCOL_VERSION:
            raise InputError(
                f"silo {self.name} speaks protocol {protocol.PROTOCOL_VERSION}, the coordinator "
                f"{config.protocol_version}: run the same segwise version on both sides"
            )
        plan = PrivacyPlan.from_dict(config.privacy) if config.privacy else None
        session = _Session(
            config=config, keys=secagg.KeyPair(), accountant=Accountant(plan) if plan else None,
            rng=np.random.default_rng(self.noise_seed),
        )
        self.sessions = {request.session: session}
        tx = self.transactions
        return {
            "name": self.name,
            "public_key": format(session.keys.public, "x"),
            "has_category": bool(tx.has_category),
            "has_discount": bool(tx.has_discount),
            "has_time_of_day": bool(tx.has_time_of_day),
            "last_order_date": None if plan else str(pd.Timestamp(tx.last_timestamp).date()),
        }

    def features(self, request: protocol.FeaturesRequest) -> dict[str, Any]:
        session = self._session(request.session)
        spec = FeatureSpec.from_dict(request.spec)
        table = build_features(self.transactions, as_of=date.fromisoformat(request.as_of), spec=spec)
        missing = [c for c in request.columns if c not in table.frame.columns]
        if missing:
            raise InputError(f"silo {self.name}: the features have no column(s) {', '.join(map(repr, missing))}")
        if len(table.frame) < session.config.min_group_size:
            raise InputError(
                f"silo {self.name} has {len(table.frame)} customers with a purchase before {request.as_of}, fewer "
                f"than the minimum group size ({session.config.min_group_size}): it cannot take part"
            )
        session.features = table.frame[request.columns].astype(np.float64)
        session.columns = list(request.columns)
        session.prepared = None
        return {"columns": list(request.columns)}

    def prepare(self, request: protocol.RoundRequest) -> dict[str, Any]:
        session = self._session(request.session)
        frame = self._require_features(session)
        grid = LogGrid.from_dict(session.config.grid)

        def compute():
            stats = column_statistics(frame.to_numpy(), grid, min_group_size=session.config.min_group_size,
                                      exact=not session.private)
            return stats

        return self._release(session, request, "prepare", math.sqrt(frame.shape[1]), compute)

    def transformed(self, request: protocol.TransformedRequest) -> dict[str, Any]:
        session = self._session(request.session)
        frame = self._require_features(session)
        plan = request.plan
        columns = list(plan["columns"])
        fill = np.asarray(plan["fill_values"], dtype=np.float64)
        log_mask = np.asarray(plan["log_mask"], dtype=bool)
        low = np.asarray(plan["clip_low"], dtype=np.float64)
        high = np.asarray(plan["clip_high"], dtype=np.float64)
        finite = np.isfinite(low) & np.isfinite(high)
        if session.private and not finite.all():
            raise InputError(f"silo {self.name}: differential privacy needs finite winsorising bounds on every column")
        # Centring on the bounds' middle halves the sensitivity under differential privacy;
        # without it the sums stay exactly those of the values.
        middle = np.where(finite, (low + high) / 2, 0.0) if session.private else np.zeros(len(columns))
        half = np.where(finite, (high - low) / 2, 0.0)
        upper = np.triu_indices(len(columns))

        def compute():
            values = frame[columns].to_numpy()
            t = np.where(np.isnan(values), fill, values)
            t = np.where(log_mask, np.sign(t) * np.log1p(np.abs(t)), t)
            u = np.clip(t, low, high) - middle
            return {"n": np.array([float(len(u))]), "sums": u.sum(axis=0), "cross_upper": (u.T @ u)[upper]}

        sensitivity = math.sqrt(1.0 + float((half**2).sum()) + float((np.outer(half, half)[upper] ** 2).sum()))
        return {**self._release(session, request, "transformed", sensitivity, compute), "middle": middle.tolist()}

    def candidates(self, request: protocol.CandidatesRequest) -> dict[str, Any]:
        from sklearn.cluster import KMeans

        session = self._session(request.session)
        frame = self._require_features(session)
        preprocessor = preprocessor_from_wire(request.preprocessor)
        prepared = preprocessor.transform(frame)
        low, high = prepared_bounds(preprocessor)
        prepared = np.clip(prepared, low, high)
        session.preprocessor, session.prepared = preprocessor, prepared
        session.released = {k: v for k, v in session.released.items() if not k.startswith(("candidates", "lloyd"))}
        min_size = session.config.min_group_size
        n_groups = max(1, min(request.n_candidates, len(prepared) // min_size))
        middle = (low + high) / 2 if session.private else np.zeros(prepared.shape[1])
        sensitivity = math.sqrt(1.0 + float((((high - low) / 2) ** 2).sum()))

        def compute():
            model = KMeans(n_clusters=n_groups, n_init=1, max_iter=50, random_state=request.seed).fit(prepared)
            counts = np.bincount(model.labels_, minlength=n_groups).astype(np.float64)
            sums = np.zeros((n_groups, prepared.shape[1]))
            np.add.at(sums, model.labels_, prepared - middle)
            if not session.private:
                keep = counts >= min_size
                counts, sums = counts[keep], sums[keep]
            return {"counts": counts, "sums": sums}

        # Candidates are per silo by nature (the coordinator picks among them): never masked.
        arrays = session.released.get(request.round)
        info: dict[str, Any] = {}
        if arrays is None:
            arrays = compute()
            if session.private:
                sigma = session.accountant.charge("candidates", sensitivity)
                arrays = add_noise(arrays, sigma, session.rng)
                info = {"release": "candidates", "sigma": sigma, "sensitivity": sensitivity}
            session.released[request.round] = arrays
        return {"aggregate": protocol.pack_aggregate(arrays, None), "middle": middle.tolist(), "privacy": info}

    def lloyd(self, request: protocol.LloydRequest) -> dict[str, Any]:
        session = self._session(request.session)
        prepared = self._require_prepared(session)
        centroid_sets = {key: protocol.decode_array(c) for key, c in request.centroids.items()}
        if session.private and len(centroid_sets) != 1:
            raise InputError(f"silo {self.name}: under differential privacy a Lloyd round takes one set of centroids")
        for key, c in centroid_sets.items():
            if c.ndim != 2 or c.shape[1] != prepared.shape[1]:
                raise InputError(
                    f"silo {self.name}: centroids {key!r} have shape {c.shape}; expected (k, {prepared.shape[1]})"
                )
        low, high = prepared_bounds(session.preprocessor)
        middle = (low + high) / 2 if session.private else np.zeros(prepared.shape[1])
        min_size = session.config.min_group_size
        sensitivity = math.sqrt(1.0 + float((((high - low) / 2) ** 2).sum()))

        def compute():
            arrays = {}
            for key, centers in centroid_sets.items():
                k = centers.shape[0]
                d2 = squared_distances(prepared, centers)
                labels = np.argmin(d2, axis=1)
                counts = np.bincount(labels, minlength=k).astype(np.float64)
                sums = np.zeros((k, prepared.shape[1]))
                np.add.at(sums, labels, prepared - middle)
                if session.private:
                    arrays.update({f"{key}/counts": counts, f"{key}/sums": sums})
                    continue
                enough = counts >= min_size
                nearest = d2[np.arange(len(labels)), labels]
                arrays.update({
                    f"{key}/counts": counts,
                    f"{key}/kept": np.where(enough, counts, 0.0),
                    f"{key}/sums": np.where(enough[:, None], sums, 0.0),
                })
                if request.with_scatter:
                    inertia = np.bincount(labels, weights=nearest, minlength=k)
                    distance = np.bincount(labels, weights=np.sqrt(nearest), minlength=k)
                    arrays[f"{key}/inertia"] = np.where(enough, inertia, 0.0)
                    arrays[f"{key}/distance"] = np.where(enough, distance, 0.0)
            return arrays

        return {**self._release(session, request, "lloyd", sensitivity, compute), "middle": middle.tolist()}

    def profile(self, request: protocol.ProfileRequest) -> dict[str, Any]:
        session = self._session(request.session)
        prepared = self._require_prepared(session)
        frame = self._require_features(session)
        centers = protocol.decode_array(request.model["centroids"])
        columns = list(request.model["columns"])
        grid = LogGrid.from_dict(session.config.profile_grid)

        def compute():
            labels = np.argmin(squared_distances(prepared, centers), axis=1)
            return column_statistics(frame[columns].to_numpy(), grid, groups=labels, n_groups=centers.shape[0],
                                     min_group_size=session.config.min_group_size, exact=not session.private)

        return self._release(session, request, "profile", math.sqrt(len(columns)), compute)

    def assign(self, request: protocol.AssignRequest) -> dict[str, Any]:
        from segwise.federated.assemble import model_from_wire
        from segwise.runs import write_table

        session = self._session(request.session)
        frame = self._require_features(session)
        model = model_from_wire(request.model)
        assignments = model.assign_features(frame)
        assignments["silo"] = self.name
        self.out_dir.mkdir(parents=True, exist_ok=True)
        target = self.out_dir / "assignments.parquet"
        tmp = self.out_dir / f".assignments-{request.session}.parquet"
        write_table(assignments, tmp)
        tmp.replace(target)
        return {"written": True}

    def close(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.pop(session_id, None)
        privacy = session.accountant.summary() if session is not None and session.accountant is not None else None
        return {"closed": session is not None, "privacy": privacy}
