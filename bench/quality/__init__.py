"""Segment-quality benchmark: population families segwise was not tuned on (``python -m bench.quality``).

See docs/quality.md for the families, the protocol and the results.
"""
