"""The report stays under 8 MB whatever the number of customers.

Only the map grows with the customers, and it draws at most `MAX_MAP_POINTS`; every
other figure and table grows with the number of segments and features. So two real
runs above the cap, one twice the size of the other, give reports of the same size
(the 1M-customer run recorded in bench/results/ gives 5.5 MB).
"""

from __future__ import annotations

import base64
import json
import re

import pytest

import segwise
from segwise.report import MAX_REPORT_BYTES, build_report
from segwise.report.data import MAX_MAP_POINTS


def _map_points(html: str) -> int:
    block = re.search(r'<script type="application/json" id="segwise-figures">(.*?)</script>', html, re.S).group(1)
    figure = json.loads(block)["fig-map"]
    points = 0
    for trace in figure["data"]:
        x = trace["x"]
        points += len(base64.b64decode(x["bdata"])) // 4 if isinstance(x, dict) else len(x)
        assert isinstance(x, dict) and x["dtype"] == "f4", "map coordinates are stored as binary float32"
    return points


@pytest.mark.slow
def test_report_size_does_not_grow_with_the_number_of_customers(tmp_path):
    sizes = {}
    for n_customers in (25_000, 50_000):
        population = segwise.generate_population(n_customers, seed=5)
        result = segwise.segment(population.orders.to_pandas(), k_range=(6, 9), random_state=0)
        run_dir = tmp_path / str(n_customers)
        result.save(run_dir, store=False, report=False)
        report = build_report(run_dir)
        html = report.path.read_text(encoding="utf-8")
        assert report.size_bytes < MAX_REPORT_BYTES
        assert _map_points(html) == MAX_MAP_POINTS
        sizes[n_customers] = report.size_bytes
    assert abs(sizes[50_000] - sizes[25_000]) / sizes[25_000] < 0.02, sizes
