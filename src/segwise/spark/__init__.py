"""segwise on Apache Spark: preparation, clustering and profiles fitted on Spark (being moved).

The engine itself is `segwise.engines.spark`.
"""
