"""Engines: where transaction tables live, feature queries run and statistics are computed.

`segwise.engines.base` holds the protocol and the registry (`get_engine`, by name);
`segwise.engines.duckdb` the embedded default and `segwise.engines.spark` Apache
Spark, each with its own SQL dialect for reading and cleaning (``engine.cleaning``).
Concrete engines are imported only when one is made, so importing this package
never imports PySpark.
"""

from segwise.engines.base import ENGINES, Engine, engine_class, get_engine, quote_identifier, value_kind

__all__ = ["ENGINES", "Engine", "engine_class", "get_engine", "quote_identifier", "value_kind"]
