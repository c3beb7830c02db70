"""Prometheus metrics of the service (``GET /metrics``), with prometheus_client.

- ``segwise_http_requests_total{endpoint, method, status}``: requests answered;
- ``segwise_http_request_duration_seconds{endpoint, method, status}``: latency
  histogram, from the first byte of the request to the last byte of the response
  inside the server;
- ``segwise_assignments_total{segment_id, segment_name}``: customers assigned;
- ``segwise_model_reloads_total{outcome}``: reloads, ``ok`` or ``rejected``;
- ``segwise_model_info{model_version, method}``: 1 for the model being served.

``endpoint`` is the route (``/v1/assign``...) or ``other`` for unknown paths, so a
scan of random URLs cannot blow up the number of series. With several workers
(``segwise serve --workers N``), the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
and every worker's counts are added up, whichever worker answers the scrape.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

__all__ = ["Metrics", "CONTENT_TYPE", "LATENCY_BUCKETS"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: Seconds; fine below 10 ms, where single assignments fall.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's metrics (one set per app).

    Parameters
    ----------
    endpoints : iterable of str
        Paths that get their own ``endpoint`` label value.
    """

    def __init__(self, endpoints: Iterable[str]) -> None:
        self.endpoints = frozenset(endpoints)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode values live in files shared by the workers; the
        # metrics must not also sit in the registry that exports those files.
        self.registry = CollectorRegistry()
        owner = None if self.multiprocess else self.registry
        labels = ["endpoint", "method", "status"]
        self.requests = Counter("segwise_http_requests", "HTTP requests answered.", labels, registry=owner)
        self.latency = Histogram("segwise_http_request_duration_seconds", "Time to answer an HTTP request.",
                                 labels, buckets=LATENCY_BUCKETS, registry=owner)
        self.assignments = Counter("segwise_assignments", "Customers assigned, by segment.",
                                   ["segment_id", "segment_name"], registry=owner)
        self.reloads = Counter("segwise_model_reloads", "Model reloads by outcome (ok, rejected).", ["outcome"],
                               registry=owner)
        self.model_info = Gauge("segwise_model_info", "1 for the model being served.", ["model_version", "method"],
                                registry=owner, multiprocess_mode="liveall")
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)
        self._children: dict[tuple[str, str, int], tuple] = {}
        self._segments: dict[tuple[int, str], object] = {}

    def endpoint(self, path: str) -> str:
        """The ``endpoint`` label of a request path."""
        return path if path in self.endpoints else "other"

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (path, method, status)
        children = self._children.get(key)
        if children is None:
            label = (self.endpoint(path), method if method in ("GET", "POST", "HEAD") else "other", str(status))
            children = (self.requests.labels(*label), self.latency.labels(*label))
            if len(self._children) < 10_000:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_assignments(self, segment_ids: np.ndarray, names: tuple[str, ...]) -> None:
        """Count assigned customers by segment."""
        if len(segment_ids) == 1:
            counts = {int(segment_ids[0]): 1}
        else:
            counts = {i: int(n) for i, n in enumerate(np.bincount(segment_ids, minlength=len(names))) if n}
        for segment_id, n in counts.items():
            key = (segment_id, names[segment_id])
            child = self._segments.get(key)
            if child is None:
                child = self._segments[key] = self.assignments.labels(str(segment_id), names[segment_id])
            child.inc(n)

    def serving(self, model_version: str, method: str, previous: tuple[str, str] | None = None) -> None:
        """Mark the model being served (and unmark the previous one)."""
        if previous is not None:
            self.model_info.labels(*previous).set(0)
        self.model_info.labels(model_version, method).set(1)

    def close(self) -> None:
        """At the end of a worker: drop its live gauges from the shared files."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
