"""What a measured step returns, and a timer for its phases.

Kept free of heavy imports: every step module imports this, and the peak memory
of a step should be that of the libraries it really uses.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

__all__ = ["PhaseTimer", "StepOutcome"]


@dataclass
class StepOutcome:
    """The result of one run of one step.

    Attributes
    ----------
    phases : dict of str to float
        Wall seconds of each phase, in the order they ran.
    info : dict
        Facts about the run worth recording (rows, chosen k, skipped parts ...).
    skipped_parts : dict of str to str
        Parts of the step not run at this size, with the reason.
    output : pandas.DataFrame or None
        One row per customer, indexed by customer id, for the agreement check
        between implementations; None when the step makes no feature table.
    """

    phases: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)
    skipped_parts: dict[str, str] = field(default_factory=dict)
    output: Any = None


class PhaseTimer:
    """Wall-clock timer of named phases (``with timer.phase("load"): ...``)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the body of the ``with`` block as phase ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = time.perf_counter() - start
