"""The benchmark sizes: how many order lines, customers and repeats each has."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BenchSize", "SIZES", "LINES_PER_CUSTOMER", "SEED"]

#: Raw order lines per customer made by `segwise.generate_population` with the
#: default behaviour types (measured with seed 0 at 10k, 50k and 200k customers:
#: 11.28 to 11.32, including returns, duplicate lines and lines without a customer).
LINES_PER_CUSTOMER = 11.3

#: Seed of every generated population.
SEED = 0


@dataclass(frozen=True)
class BenchSize:
    """One benchmark size.

    Attributes
    ----------
    name : str
        What ``--size`` accepts.
    target_lines : int
        Order lines aimed for; the generated log has about this many.
    repeats : int
        Fresh-subprocess runs of every step; the table shows the median.
    """

    name: str
    target_lines: int
    repeats: int

    @property
    def n_customers(self) -> int:
        """Customers to generate to get about ``target_lines`` order lines."""
        return round(self.target_lines / LINES_PER_CUSTOMER)


SIZES: dict[str, BenchSize] = {
    size.name: size
    for size in (
        BenchSize("quick", 100_000, repeats=3),
        BenchSize("1m", 1_000_000, repeats=3),
        BenchSize("10m", 10_000_000, repeats=1),
    )
}
