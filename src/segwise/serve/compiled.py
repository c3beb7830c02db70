"""A model's assignment rule compiled at load time for the service's request path.

`SegmentationModel.assign_rows` runs share shrinkage, then every step of the
`Preprocessor` (impute, log, quantile map, clip, centre and scale, keep, indicators,
one-hot or codes, weights, PCA), then the clusterer, each as its own numpy
operation. For one customer those calls cost more than their arithmetic. Compiled,
the same preparation is:

1. the element-wise, non-linear part on the numeric input columns, in the order
   the preparation applies it: share shrinkage (its columns only), missing and
   infinite values replaced by the training fill values, ``sign(x) * log1p(|x|)``
   on the log columns, the quantile map on the quantile columns, clipping at the
   winsorising bounds;
2. one affine map ``x @ M + b`` that folds centring, scaling, the choice of kept
   columns, the weights and the PCA projection into one matrix;
3. the 0/1 missing-value indicators, and each categorical column's level, added
   as precomputed rows of that same affine map (a one-hot column is linear in its
   0/1 value, so its weighted, projected contribution is a constant row); level
   codes (``categorical_encoding="codes"``, which excludes PCA) are written to
   their output columns.

k-means assignment is compiled as well: the squared distances to the centroids
use the centroids' precomputed squared norms (the same expansion as
`segwise.cluster.kmeans.squared_distances`). Other methods call their own
``assign_prepared``. The result equals `SegmentationModel.assign_rows` (and the
pandas path, `Segmenter.predict`) to floating-point rounding: the test
``tests/serve/test_compiled.py`` checks every method on random and edge-case input.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from segwise.cluster.kmeans import KMeansSegmenter, centroid_confidence
from segwise.errors import InputError
from segwise.features.shrink import SHARE_UNITS
from segwise.model import RowAssignments, SegmentationModel, _is_number_or_missing
from segwise.prepare import _is_missing, _quantile_apply
from segwise.segmenter import Segmenter

__all__ = ["CompiledAssigner"]


@dataclass(frozen=True)
class _Categorical:
    """One categorical input column: what each level adds to the prepared row."""

    name: str
    mode: str
    #: Level text to its contribution (a row of the output); for codes, to its code.
    known: dict[str, Any]
    #: Contribution of a level not in ``known`` ("other" when levels were capped, else nothing).
    unknown: Any
    #: Output position of the code column (codes encoding), else -1.
    code_position: int


class CompiledAssigner:
    """The preparation and assignment of one model, compiled (see the module docstring).

    Parameters
    ----------
    segmenter : Segmenter
        A fitted segmenter (a model's ``segmenter``; see `from_model`).

    `assign_rows` has the contract of `SegmentationModel.assign_rows`, `prepare`
    the result of the segmenter's preparation (shrinkage and `Preprocessor.transform`).
    """

    def __init__(self, segmenter: Segmenter) -> None:
        pre = segmenter.preprocessor_
        self.numeric = tuple(pre.numeric_in_)
        # What rows carry: the same columns, unless one is derived (the overdue ratio from
        # its rfm columns, `Segmenter.numeric_from_inputs`).
        self.inputs = tuple(segmenter.input_numeric())
        self._derive = None if self.inputs == self.numeric else segmenter.numeric_from_inputs
        self._get_numeric = operator.itemgetter(*self.inputs) if len(self.inputs) > 1 else None
        self.n_segments = int(segmenter.n_segments_)
        self.label_map = np.asarray(segmenter.label_map_)
        self.clusterer = segmenter.clusterer_
        self.has_probabilities = hasattr(self.clusterer, "predict_proba")
        position = {c: i for i, c in enumerate(self.numeric)}

        # 1. share shrinkage, vectorised over its columns (same formula as ShareShrinkage).
        shrinkage = getattr(segmenter, "shrinkage_", None)
        self._shrink = None
        if shrinkage is not None and shrinkage.params_:
            columns = list(shrinkage.params_)
            bounds = np.array([SHARE_UNITS[shrinkage.units[c]] for c in columns], dtype=np.float64)
            self._shrink = (
                np.array([position[c] for c in columns]), position[shrinkage.count_column],
                bounds[:, 0], bounds[:, 1] - bounds[:, 0],
                np.array([shrinkage.params_[c]["m"] for c in columns], dtype=np.float64),
                np.array([shrinkage.params_[c]["mu"] for c in columns], dtype=np.float64),
            )

        # Element-wise steps.
        self._fill = np.asarray(pre.fill_values_, dtype=np.float64)
        self._log = np.flatnonzero(pre.log_mask_)
        self._quantile = np.flatnonzero(pre.quantile_mask_)
        self._quantiles, self._references = pre.quantiles_, pre.references_
        self._clip_low = np.asarray(pre.clip_low_, dtype=np.float64)
        self._clip_high = np.asarray(pre.clip_high_, dtype=np.float64)

        # 2. the affine map, before PCA: output column p of kept numeric column i is
        # (x_i - center_i) / scale_i * weight_p.
        weights = np.asarray(pre.weights_, dtype=np.float64)
        n_wide = len(weights)
        kept = np.flatnonzero(pre.numeric_kept_)
        matrix = np.zeros((len(self.numeric), n_wide))
        offset = np.zeros(n_wide)
        factor = weights[: len(kept)] / pre.scale_[kept]
        matrix[kept, np.arange(len(kept))] = factor
        offset[: len(kept)] = -pre.center_[kept] * factor
        p = len(kept)
        indicator_rows = np.zeros((len(pre.indicator_columns_), n_wide))
        for j in range(len(pre.indicator_columns_)):
            indicator_rows[j, p + j] = weights[p + j]
        self._indicators = np.array([self.numeric.index(c) for c in pre.indicator_columns_], dtype=np.intp)
        p += len(pre.indicator_columns_)
        codes = pre.categorical_encoding == "codes"
        categorical = []
        for column, levels in pre.categorical_levels_.items():
            mode = pre.categorical_modes_[column]
            # With capped levels, every level outside the kept ones reads as "other"
            # (including a level literally named "other").
            capped = levels[-1] == "other"
            if codes:
                # A level's code is its position; unseen and uncapped, the mode's code (or 0).
                known = {}
                for code, level in enumerate(levels):
                    known.setdefault(level, float(code))
                if capped:
                    unknown = known.pop("other")
                else:
                    unknown = float(levels.index(mode)) if mode in levels else 0.0
                categorical.append(_Categorical(column, mode, known, unknown, p))
                p += 1
                continue
            rows = {}
            for level in dict.fromkeys(levels):
                row = np.zeros(n_wide)
                hits = [p + i for i, lv in enumerate(levels) if lv == level]
                row[hits] = weights[hits]
                rows[level] = row
            # Uncapped, an unseen level is all zeros.
            unknown = rows["other"] if capped else np.zeros(n_wide)
            known = {lv: r for lv, r in rows.items() if not (capped and lv == "other")}
            categorical.append(_Categorical(column, mode, known, unknown, -1))
            p += len(levels)
        if p != n_wide:
            raise ValueError(f"the preparation has {n_wide} output columns, the compiled form {p}")

        # PCA folded into the same map.
        components = np.asarray(pre.pca_components_, dtype=np.float64)
        if components.size:
            projection = components.T
            mean = np.asarray(pre.pca_mean_, dtype=np.float64)
            matrix = matrix @ projection
            offset = (offset - mean) @ projection
            indicator_rows = indicator_rows @ projection
            categorical = [
                _Categorical(c.name, c.mode, {lv: r @ projection for lv, r in c.known.items()},
                             c.unknown @ projection, c.code_position) for c in categorical
            ]
        self._matrix, self._offset = matrix, offset
        # The same parameters as Python lists and floats, for `_prepare_one`.
        self._fill_one = self._fill.tolist()
        self._clip_low_one, self._clip_high_one = self._clip_low.tolist(), self._clip_high.tolist()
        self._log_one = self._log.tolist()
        self._indicator_of = {int(j): k for k, j in enumerate(self._indicators)}
        if self._shrink is not None:
            columns, count, low, width, m, mu = self._shrink
            self._shrink_one = (columns.tolist(), count, low.tolist(), width.tolist(), m.tolist(), mu.tolist())
        self._indicator_rows = indicator_rows
        self._categorical = tuple(categorical)
        self.categorical_columns = tuple(c.name for c in categorical)
        self.n_prepared = matrix.shape[1]

        # k-means: nearest centroid, with the centroids' norms computed once.
        self._centers_t = self._centers_sq = None
        if type(self.clusterer) is KMeansSegmenter:
            centers = np.asarray(self.clusterer.cluster_centers_, dtype=np.float64)
            self._centers_t = np.ascontiguousarray(centers.T)
            self._centers_sq = np.einsum("ij,ij->i", centers, centers)[None, :]

    @classmethod
    def from_model(cls, model: SegmentationModel) -> "CompiledAssigner":
        """Compile a loaded model."""
        return cls(model.segmenter)

    # ------------------------------------------------------------------ preparation

    def prepare(self, values: np.ndarray, categories: Mapping[str, Sequence[Any]] | None = None) -> np.ndarray:
        """The prepared matrix of raw rows.

        Parameters
        ----------
        values : ndarray of shape (n_rows, len(numeric))
            The numeric input columns in `numeric` order; NaN (or None) where missing.
        categories : mapping of str to sequence, optional
            One sequence of length n_rows per categorical input column (None or NaN
            where missing).
        """
        x = np.array(values, dtype=np.float64, copy=True)
        n = x.shape[0]
        if self._shrink is not None:
            columns, count, low, width, m, mu = self._shrink
            orders = x[:, count]
            orders = np.where(np.isfinite(orders) & (orders > 0), orders, 0.0)[:, None]
            share = (x[:, columns] - low) / width
            with np.errstate(invalid="ignore"):  # an infinite share of 0 orders: NaN, then missing
                x[:, columns] = low + (orders * share + m * mu) / (orders + m) * width
        missing = ~np.isfinite(x)  # infinities are missing values, as in the preparation
        if missing.any():
            x = np.where(missing, self._fill, x)
        if self._log.size:
            logged = x[:, self._log]
            x[:, self._log] = np.sign(logged) * np.log1p(np.abs(logged))
        if self._quantile.size:
            x[:, self._quantile] = _quantile_apply(x[:, self._quantile], self._quantiles, self._references)
        np.minimum(np.maximum(x, self._clip_low, out=x), self._clip_high, out=x)
        out = x @ self._matrix
        out += self._offset
        if self._indicators.size:
            out += missing[:, self._indicators].astype(np.float64) @ self._indicator_rows
        for column in self._categorical:
            raw = (categories or {}).get(column.name)
            if raw is None or len(raw) != n:
                raise ValueError(f"the categorical column {column.name!r} needs {n} values")
            if column.code_position >= 0:
                out[:, column.code_position] = [self._level(column, v) for v in raw]
            else:
                for i, v in enumerate(raw):
                    out[i] += self._level(column, v)
        return out

    @staticmethod
    def _level(column: _Categorical, value: Any) -> Any:
        text = column.mode if _is_missing(value) else str(value)
        return column.known.get(text, column.unknown)

    # ------------------------------------------------------------------ assignment

    def assign_prepared(self, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster and confidence of prepared rows (the clusterer's own rule)."""
        if self._centers_t is None:
            return self.clusterer.assign_prepared(prepared)
        if prepared.shape[0] == 1 and self._centers_t.shape[1] > 1:
            return self._nearest_one(prepared[0])
        x_sq = np.einsum("ij,ij->i", prepared, prepared)[:, None]
        squared = np.maximum(x_sq - 2.0 * (prepared @ self._centers_t) + self._centers_sq, 0.0)
        return np.argmin(squared, axis=1), centroid_confidence(np.sqrt(squared))

    def _nearest_one(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # One customer: numpy's per-call cost outweighs the arithmetic of partitioning k
        # distances, so the two nearest are found in Python (same formula as centroid_confidence).
        squared = (float(row @ row) - 2.0 * (row @ self._centers_t) + self._centers_sq[0]).tolist()
        nearest = min(range(len(squared)), key=squared.__getitem__)
        first = math.sqrt(max(squared[nearest], 0.0))
        second = math.sqrt(max(min(d for i, d in enumerate(squared) if i != nearest), 0.0))
        confidence = min(max(1.0 - first / second, 0.0), 1.0) if second > 0 else 0.0
        return np.array([nearest]), np.array([confidence])

    def assign_arrays(self, values: np.ndarray,
                      categories: Mapping[str, Sequence[Any]] | None = None) -> RowAssignments:
        """Segments, confidences and probabilities of raw rows given as arrays.

        ``values`` holds the `inputs` columns (as `values_of` returns them); the rest is
        as in `prepare`.
        """
        if self._derive is not None:
            values = self._derive(np.asarray(values, dtype=np.float64))
        return self._assign(self.prepare(values, categories))

    def _assign(self, prepared: np.ndarray) -> RowAssignments:
        cluster, confidence = self.assign_prepared(prepared)
        segment = self.label_map[cluster].astype(np.int64)
        probabilities = None
        if self.has_probabilities:
            by_cluster = np.asarray(self.clusterer.predict_proba(prepared), dtype=np.float64)
            probabilities = np.zeros((len(segment), self.n_segments))
            probabilities[:, self.label_map] = by_cluster
        return RowAssignments(segment, np.asarray(confidence, dtype=np.float64), probabilities)

    def values_of(self, rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, dict[str, list[Any]]]:
        """The numeric array (the `inputs` columns) and categorical columns of rows given as mappings.

        Raises
        ------
        InputError
            A row lacks an input column, or a numeric column holds something else than
            a number or None (the messages of `SegmentationModel.assign_rows`).
        """
        try:
            if self._get_numeric is not None:
                values = np.array(list(map(self._get_numeric, rows)), dtype=np.float64)
            else:
                values = np.array([[row[c] for c in self.inputs] for row in rows], dtype=np.float64)
            categories = {c: [row[c] for row in rows] for c in self.categorical_columns}
        except KeyError as exc:
            raise InputError(f"the features lack the column {exc.args[0]!r}, which the model needs") from None
        except (TypeError, ValueError):
            bad = sorted({c for row in rows for c in self.inputs if not _is_number_or_missing(row[c])})
            raise InputError(
                f"feature column(s) {', '.join(map(repr, bad))} must hold numbers (or null when missing)"
            ) from None
        return values.reshape(len(rows), len(self.inputs)), categories

    def assign_rows(self, rows: Sequence[Mapping[str, Any]]) -> RowAssignments:
        """`SegmentationModel.assign_rows`, compiled: rows are mappings of raw feature values."""
        if len(rows) == 0:
            return RowAssignments(np.zeros(0, np.int64), np.zeros(0), None)
        if len(rows) == 1 and not self._quantile.size and self._derive is None:
            return self._assign(self._prepare_one(rows[0]))
        values, categories = self.values_of(rows)
        return self.assign_arrays(values, categories)

    def _prepare_one(self, row: Mapping[str, Any]) -> np.ndarray:
        """`prepare` of one row, its element-wise part on Python floats.

        For one customer, a numpy call per step costs more than the step: this is the
        same arithmetic, in the same order, one column at a time (the quantile map has
        no such form; `assign_rows` does not come here when the model uses it).
        """
        try:
            numbers = self._get_numeric(row) if self._get_numeric is not None else [row[c] for c in self.inputs]
            x = [math.nan if v is None else float(v) for v in numbers]
            texts = [row[c] for c in self.categorical_columns]
        except (KeyError, TypeError, ValueError):
            self.values_of([row])  # raises the InputError naming the column
            raise
        if self._shrink is not None:
            columns, count, low, width, m, mu = self._shrink_one
            orders = x[count]
            orders = orders if math.isfinite(orders) and orders > 0 else 0.0
            for i, lo, w, mi, mui in zip(columns, low, width, m, mu):
                x[i] = lo + (orders * ((x[i] - lo) / w) + mi * mui) / (orders + mi) * w
        fill, clip_low, clip_high = self._fill_one, self._clip_low_one, self._clip_high_one
        missing = []
        for j, v in enumerate(x):
            if not math.isfinite(v):
                x[j] = fill[j]
                missing.append(j)
        for j in self._log_one:
            v = x[j]
            x[j] = (1.0 if v > 0 else -1.0 if v < 0 else 0.0) * math.log1p(abs(v))
        for j, v in enumerate(x):
            x[j] = min(max(v, clip_low[j]), clip_high[j])
        out = np.array(x) @ self._matrix
        out += self._offset
        for j in missing:
            k = self._indicator_of.get(j)
            if k is not None:
                out += self._indicator_rows[k]
        for column, text in zip(self._categorical, texts):
            level = self._level(column, text)
            if column.code_position >= 0:
                out[column.code_position] = level
            else:
                out += level
        return out[None, :]

