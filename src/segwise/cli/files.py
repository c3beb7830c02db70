"""Reading a command's inputs and writing its single-file outputs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

from segwise.cli.options import LoadOptions
from segwise.errors import InputError

__all__ = ["load_inputs", "write_atomic_table"]


def load_inputs(data: Optional[Path], customers: Optional[Path], load: LoadOptions, engine=None):
    """Load the transaction log and/or customer table given on the command line.

    With a postgresql:// DATA, ``--customers NAME`` may name a table of the same database.
    """
    from segwise.data import load_customers, load_transactions
    from segwise.engines import get_engine

    if data is None and customers is None:
        raise InputError("give a transaction log (DATA), a customer table (--customers FILE), or both")
    engine = get_engine(engine)
    transactions = load_transactions(str(data), engine=engine, **load.transactions_kwargs()) if data is not None else None
    customer_table = (
        load_customers(str(customers), engine=engine, **load.customers_kwargs(primary=data is None))
        if customers is not None else None
    )
    return transactions, customer_table


def write_atomic_table(frame, path: Path) -> None:
    """Write a table to a temporary name beside ``path`` and rename it into place."""
    from segwise.outputs import write_table

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write_table(frame, Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
