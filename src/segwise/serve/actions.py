"""A playbook's next-best-action rules for one customer, without pandas.

`Playbook.actions_for` evaluates a customer's rules through a one-row DataFrame,
which costs far more than the comparisons for a single assignment. `PlaybookRules`
holds the same rules per segment and evaluates each condition on one value with
the reading `Condition.holds` gives a column: text conditions compare the value's
text (a missing value meets neither ``==`` nor ``!=``), numeric ones the value as a
number (missing, or text that is not a number, meets none). The test
``tests/serve/test_actions.py`` checks it against `Playbook.actions_for`.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Mapping

from segwise.playbook import Condition, Playbook
from segwise.prepare import _is_missing

__all__ = ["PlaybookRules"]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}


def _number(value: Any) -> float:
    """The value as a number, NaN when missing or not numeric (as ``pd.to_numeric(errors="coerce")``)."""
    if _is_missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def holds(condition: Condition, value: Any) -> bool:
    """Whether one customer's ``value`` of the condition's feature meets it."""
    if isinstance(condition.value, str):
        if _is_missing(value):
            return False
        equal = str(value) == condition.value
        return equal if condition.op == "==" else not equal
    number = _number(value)
    return not math.isnan(number) and _COMPARE[condition.op](number, condition.value)


class PlaybookRules:
    """Each segment's (action, conditions) rules of a bound playbook, in rule order.

    Parameters
    ----------
    playbook : Playbook
        Bound to the model (`Playbook.bind_model`), so segments have ids.
    n_segments : int
    """

    def __init__(self, playbook: Playbook, n_segments: int) -> None:
        self.rules: dict[int, list[tuple[str, tuple[Condition, ...]]]] = {}
        for segment_id in range(n_segments):
            play = playbook.for_segment(segment_id)
            if play is not None:
                self.rules[segment_id] = [(rule.action, tuple(rule.when)) for rule in play.actions]

    def actions_for(self, segment_id: int, features: Mapping[str, Any]) -> list[str]:
        """`Playbook.actions_for`: every action of the segment whose conditions all hold."""
        return [action for action, when in self.rules.get(segment_id, ())
                if all(holds(c, features.get(c.feature)) for c in when)]
