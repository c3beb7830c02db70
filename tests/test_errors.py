"""Every exception segwise defines is a SegwiseError, and the errors module draws them all."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import segwise
import segwise.errors
from segwise.errors import SegwiseError


def _exception_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(segwise.__path__, "segwise."):
        try:
            module = importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra (torch) that is not installed
            assert "segwise" in str(exc) or "No module named" in str(exc), exc
            continue
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException) and not issubclass(value, Warning)
                    and value.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_exception_class_is_a_segwise_error():
    classes = _exception_classes()
    assert "segwise.serve.schemas.InvalidRequest" in classes
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, SegwiseError))
    assert outside == []


def test_the_errors_docstring_draws_every_class():
    drawn = segwise.errors.__doc__
    missing = sorted(name for name in _exception_classes() if name.rsplit(".", 1)[1] not in drawn)
    assert missing == []
