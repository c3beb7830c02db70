"""The engine a command runs on, from its ``--engine`` option and option sets."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from segwise.cli.options import EngineBounds
from segwise.errors import InputError

__all__ = ["EngineOpt", "SparkMasterOpt", "SparkConfOpt", "command_engine", "source_engine"]

EngineOpt = Annotated[
    Optional[str], typer.Option("--engine", help=(
        "Where the work runs: duckdb (embedded, the default for files), spark (needs segwise[spark]) or postgres "
        "(inside the database of a postgresql:// DATA, the default for one)."))
]
SparkMasterOpt = Annotated[
    Optional[str],
    typer.Option("--spark-master", help="Spark master for --engine spark: local[2], spark://HOST:7077, yarn..."),
]
SparkConfOpt = Annotated[
    Optional[list[str]],
    typer.Option("--spark-conf", metavar="KEY=VALUE", help="Spark setting for --engine spark (repeatable)."),
]


def source_engine(data, bounds: EngineBounds):
    """The engine of a command without --engine: the database of a postgresql:// DATA, else DuckDB."""
    from segwise.engines.postgres_url import is_postgres_url

    if is_postgres_url(data):
        from segwise.engines.postgres import PostgresEngine

        if bounds.given:
            raise InputError("--memory-limit, --threads and --temp-dir bound DuckDB; with a postgresql:// DATA "
                             "the work runs in the database")
        return PostgresEngine(str(data))
    return bounds.engine()


def command_engine(engine: Optional[str], spark_master: Optional[str], spark_conf: Optional[list[str]],
                   bounds: EngineBounds, data=None):
    """The engine named on the command line (Spark options only with --engine spark, DuckDB's
    resource bounds only with DuckDB: Spark takes them as --spark-conf settings); without
    --engine, the database of a postgresql:// DATA, else DuckDB."""
    from segwise.engines import ENGINES, get_engine
    from segwise.engines.postgres_url import is_postgres_url

    if engine is None:
        engine = "postgres" if is_postgres_url(data) else "duckdb"
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "postgres":
        if not is_postgres_url(data):
            raise InputError("--engine postgres runs inside a PostgreSQL database: give DATA as "
                             "postgresql://USER@HOST:PORT/DATABASE with --table NAME or --query \"SELECT ...\"")
        if spark_master or spark_conf:
            raise InputError("--spark-master and --spark-conf need --engine spark")
        return source_engine(data, bounds)
    if engine != "spark":
        if spark_master or spark_conf:
            raise InputError("--spark-master and --spark-conf need --engine spark")
        return bounds.engine()
    if bounds.given:
        raise InputError("--memory-limit, --threads and --temp-dir bound the DuckDB engine; with --engine spark "
                         "set spark.driver.memory and spark.executor.memory with --spark-conf")
    conf = {}
    for item in spark_conf or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--spark-conf takes KEY=VALUE (e.g. spark.executor.memory=8g), got {item!r}")
        conf[key.strip()] = value.strip()
    return get_engine("spark", master=spark_master, conf=conf)
