"""One colour per segment, the same in every card, table and figure of a report.

Segments take the colours of `SEGMENT_COLOURS` in segment-id order (Tableau 10,
a palette designed to be told apart, also by most colour-blind readers, followed
by ten darker companions); the group a density method calls noise ("Outliers")
is always grey, so it never looks like a segment of its own.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["SEGMENT_COLOURS", "OUTLIER_COLOUR", "OUTLIERS_NAME", "segment_colours", "DIVERGING", "SEQUENTIAL"]

SEGMENT_COLOURS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#17becf",
    "#2f4b7c", "#a05195", "#d45087", "#665191", "#ff7c43", "#003f5c", "#7a5195", "#bc5090", "#488f31", "#de425b",
)
OUTLIER_COLOUR = "#9e9e9e"
#: Name a density method gives its noise group.
OUTLIERS_NAME = "Outliers"

#: Diverging scale for z-scores (blue below average, red above), white at 0.
DIVERGING = [[0.0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1.0, "#b2182b"]]
#: Sequential scale for counts and shares.
SEQUENTIAL = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]]


def segment_colours(segments: Iterable[tuple[int, str]]) -> dict[int, str]:
    """Segment id -> colour, for ``(segment_id, name)`` pairs."""
    colours: dict[int, str] = {}
    position = 0
    for segment_id, name in sorted(segments):
        if name == OUTLIERS_NAME:
            colours[int(segment_id)] = OUTLIER_COLOUR
        else:
            colours[int(segment_id)] = SEGMENT_COLOURS[position % len(SEGMENT_COLOURS)]
            position += 1
    return colours
