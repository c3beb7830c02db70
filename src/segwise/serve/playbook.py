"""Recommended actions from a model's playbook, for the assignment response.

The playbook (`SegmentationModel.playbook`, stored in the model document under
``"playbook"``) is read defensively, because the service must serve models with
and without one:

- no playbook (None, or a model that has no such attribute): actions are null;
- an object with a method ``actions_for(segment_id, features)``: its result, which
  may depend on the customer's features (next-best-action rules);
- otherwise a mapping (or an object with ``to_dict()``) whose per-segment entries sit
  under ``"segments"`` (or at the top level), keyed by segment id (as text) or by
  segment name; the entry's ``"actions"`` list is returned, or [] when the segment
  has no entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["recommended_actions", "static_playbook"]


def static_playbook(playbook: Any) -> Any:
    """The form `recommended_actions` reads, computed once per model."""
    if playbook is None or callable(getattr(playbook, "actions_for", None)):
        return playbook
    document = playbook.to_dict() if callable(getattr(playbook, "to_dict", None)) else playbook
    if not isinstance(document, Mapping):
        raise TypeError(f"the model's playbook is neither a mapping nor has actions_for() (got {type(playbook).__name__})")
    segments = document.get("segments", document)
    if not isinstance(segments, Mapping):
        raise TypeError("the model's playbook has a 'segments' entry that is not a mapping")
    return {str(key): _action_list(entry) for key, entry in segments.items()}


def _action_list(entry: Any) -> list[str]:
    if not isinstance(entry, Mapping):
        return []
    actions = entry.get("actions") or []
    if isinstance(actions, str):
        return [actions]
    return [str(a) for a in actions]


def recommended_actions(playbook: Any, segment_id: int, segment_name: str, features: Mapping[str, Any]) -> list[str] | None:
    """Actions for one customer of ``segment_id`` (see the module docstring)."""
    if playbook is None:
        return None
    if isinstance(playbook, dict):
        found = playbook.get(str(segment_id))
        if found is None:
            found = playbook.get(segment_name, [])
        return list(found)
    return [str(a) for a in playbook.actions_for(segment_id, dict(features))]
