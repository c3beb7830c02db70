"""Benchmark harness for segwise: ``python -m bench --size quick|1m|10m``.

Every measured step runs in a fresh Python subprocess (`bench.runner`), so its
peak resident memory is its own. See ``bench/README.md`` for what each step is
and how to read the results in ``bench/results/``.
"""
