"""Progress lines of pipeline stages."""

from __future__ import annotations

from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from segwise.cli.app import err

__all__ = ["StageProgress"]


class StageProgress:
    """Rich progress lines for pipeline stages (on stderr, only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
            transient=False, disable=not enabled,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> "StageProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, stage: str, label: str) -> None:
        if label == "done":
            task = self.tasks.get(stage)
            if task is not None:
                self.progress.update(task, total=1, completed=1)
        else:
            self.tasks[stage] = self.progress.add_task(label, total=None)
