"""segwise on Apache Spark: the same definitions, run where the data lives.

`SparkEngine` holds a SparkSession; loading, cleaning and the feature families run
as Spark SQL compiled from the same rules and Ibis expressions as the DuckDB
engine. Preparation statistics and clustering (MLlib k-means||, bisecting k-means,
Gaussian mixture) are fitted on Spark and exported into the ordinary model file,
so ``segwise assign`` and ``segwise serve`` need no Spark.

PySpark is the optional ``spark`` extra (``pip install 'segwise[spark]'``); this
package imports it only when an engine is made. `segwise.spark.models` (the
exported models) never imports it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SparkEngine", "require_pyspark"]


def require_pyspark() -> Any:
    """Import pyspark, or say which extra to install."""
    try:
        import pyspark
    except ImportError:
        raise ImportError(
            "the Spark engine needs PySpark: pip install 'segwise[spark]' (and Java 17 or later)"
        ) from None
    return pyspark


def __getattr__(name: str) -> Any:
    if name == "SparkEngine":
        from segwise.spark.engine import SparkEngine

        return SparkEngine
    raise AttributeError(name)
