"""The examples in the metric classes' docstrings run (``compute()`` returning dicts is shown there)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import condsynth.metrics

MODULES = sorted(m.name for m in pkgutil.walk_packages(condsynth.metrics.__path__, "condsynth.metrics."))


def test_the_metric_classes_have_examples():
    with_examples = {name for name in MODULES
                     if any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name)))}
    for name in ("base", "image_quality", "fid", "inception_score", "lmd", "verification", "age", "painting"):
        assert f"condsynth.metrics.{name}" in with_examples, name


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
