"""Populations for the federated tests: synthetic logs whose customer ids are text
with a recognisable prefix, so a test can look for them in the wire log."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from segwise.data import load_transactions
from segwise.federated import LocalSilo, Silo, WireLog
from segwise.synth import generate_population

#: Every customer id in these tests starts with this.
ID_PREFIX = "CUST-"


@dataclass
class Population:
    orders: pa.Table
    customers: pa.Table
    truth: pd.DataFrame


@functools.lru_cache(maxsize=4)
def population(n_customers: int, seed: int) -> Population:
    pop = generate_population(n_customers, seed=seed)

    def text_ids(table: pa.Table) -> pa.Table:
        ids = pc.binary_join_element_wise(ID_PREFIX, pc.cast(table["customer_id"], pa.string()), "")
        return table.set_column(table.schema.get_field_index("customer_id"), "customer_id", ids)

    truth = pop.truth.assign(customer_id=ID_PREFIX + pop.truth["customer_id"].astype(str))
    return Population(orders=text_ids(pop.orders), customers=text_ids(pop.customers), truth=truth)


def split_orders(orders: pa.Table, silo_of: dict[str, int], n_silos: int) -> list[pa.Table]:
    """The order lines of each silo (lines without a customer id stay out)."""
    ids = orders["customer_id"].to_pylist()
    labels = np.array([silo_of.get(i, -1) if i is not None else -1 for i in ids])
    return [orders.filter(pa.array(labels == s)) for s in range(n_silos)]


def random_split(orders: pa.Table, n_silos: int, seed: int) -> list[pa.Table]:
    ids = sorted({i for i in orders["customer_id"].to_pylist() if i is not None})
    rng = np.random.default_rng(seed)
    return split_orders(orders, dict(zip(ids, rng.integers(0, n_silos, len(ids)).tolist())), n_silos)


def local_silos(tables: list[pa.Table], tmp_path, *, noise_seed: int | None = None, log: WireLog | None = None):
    """In-process silos (the same JSON bytes as over HTTP) sharing one wire log."""
    log = log if log is not None else WireLog(None)
    silos = []
    for i, table in enumerate(tables):
        silo = Silo(load_transactions(table), name=f"silo-{i + 1}", out_dir=tmp_path / f"silo-{i + 1}",
                    noise_seed=None if noise_seed is None else noise_seed + i)
        silos.append(LocalSilo(silo, log))
    return silos, log
