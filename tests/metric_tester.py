"""MetricTester: one set of checks for every metric object, in the shape of torchmetrics' tester.

A test module lists its metrics as ``pytest.param(MetricCase(...), id=...)`` in a module-level
``CASES`` list and parametrises a :class:`MetricTester` subclass over it::

    CASES = [pytest.param(MetricCase(lambda: SSIM(data_range=1.0), image_pairs, skimage_ssim), id="ssim")]

    @pytest.mark.parametrize("case", CASES)
    class TestMetrics(MetricTester):
        pass

Each case then gets the same tests:

* ``compute()`` returns a ``dict[str, Tensor]`` (0-dim tensors);
* the metric, updated batch by batch, equals the reference implementation run on all the data
  (scikit-image, SciPy or an independent NumPy formula) on the keys the reference gives;
* ``reset()`` restarts it: the same batches give the same values again;
* in a 2-process gloo DDP run, where rank r sees batches r, r + 2, ..., ``compute()`` on rank 0
  equals the single-process value (rel. 1e-9), for the cases marked ``ddp=True`` (states that do
  not depend on the order of the ranks). One spawn serves all cases of a test class.

A batch is the argument list of one ``update`` call: a tuple (positional) or a dict (keywords).
Adding a metric is one ``pytest.param`` line in ``CASES``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

WORLD = 2


@dataclass(frozen=True)
class MetricCase:
    make: Callable[[], object]                      # a fresh metric object
    batches: Callable[[], list]                     # the update calls: tuples (args) or dicts (kwargs)
    reference: Callable[[list], dict[str, float]]   # expected values from all batches
    rtol: float = 1e-6
    atol: float = 1e-8
    ddp: bool = True                                # order-independent state: check DDP against one process


def run_updates(metric, batches) -> None:
    for b in batches:
        if isinstance(b, dict):
            metric.update(**b)
        else:
            metric.update(*b)


def values_of(metric) -> dict[str, float]:
    return {k: float(v) for k, v in metric.compute().items()}


def evaluate(case: MetricCase, rank: int = 0, world: int = 1) -> dict[str, float]:
    metric = case.make()
    run_updates(metric, case.batches()[rank::world])
    return values_of(metric)


def _close(got: float, want: float, rtol: float, atol: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):
        return got == want
    return abs(got - want) <= atol + rtol * abs(want)


def _ddp_worker(rank: int, world: int, init_file: str, module: str, ids: list[str], out: str):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        cases = {p.id: p.values[0] for p in importlib.import_module(module).CASES}
        res = {i: evaluate(cases[i], rank, world) for i in ids}
        if rank == 0:
            with open(out, "w") as fh:
                json.dump(res, fh)
    finally:
        dist.destroy_process_group()


def run_ddp(module: str, ids: list[str], tmp_dir, world: int = WORLD) -> dict[str, dict[str, float]]:
    """Rank 0's ``compute()`` of each case ``ids`` of ``module.CASES`` in a ``world``-process gloo run."""
    import torch.multiprocessing as mp
    out = os.path.join(str(tmp_dir), "ddp.json")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_ddp_worker, args=(world, os.path.join(str(tmp_dir), "init"), module, ids, out), nprocs=world,
             join=True)
    with open(out) as fh:
        return json.load(fh)


class MetricTester:
    """The checks every metric case goes through (see the module docstring)."""

    @pytest.fixture(scope="class")
    def ddp_values(self, request, tmp_path_factory):
        ids = [p.id for p in request.module.CASES if p.values[0].ddp]
        return run_ddp(request.module.__name__, ids, tmp_path_factory.mktemp("ddp"))

    def test_compute_returns_a_dict_of_tensors(self, case: MetricCase):
        metric = case.make()
        run_updates(metric, case.batches())
        out = metric.compute()
        assert isinstance(out, dict) and out, type(out)
        for key, value in out.items():
            assert isinstance(key, str)
            assert isinstance(value, torch.Tensor) and value.dim() == 0, (key, value)

    def test_matches_reference(self, case: MetricCase):
        got = evaluate(case)
        want = case.reference(case.batches())
        assert want and set(want) <= set(got), (sorted(want), sorted(got))
        bad = {k: (got[k], w) for k, w in want.items() if not _close(got[k], w, case.rtol, case.atol)}
        assert not bad, f"metric vs reference differ: {bad}"

    def test_reset_restarts(self, case: MetricCase):
        metric = case.make()
        run_updates(metric, case.batches())
        first = values_of(metric)
        metric.reset()
        run_updates(metric, case.batches())
        again = values_of(metric)
        assert first.keys() == again.keys()
        assert all(_close(again[k], v, 1e-12, 0.0) for k, v in first.items()), (first, again)

    @pytest.mark.slow
    def test_ddp_equals_one_process(self, case: MetricCase, request):
        if not case.ddp:
            pytest.skip("the state depends on the order of the ranks (a split or draw protocol)")
        assert len(case.batches()) >= WORLD, "a DDP case needs at least one batch per rank"
        ddp = request.getfixturevalue("ddp_values")[request.node.callspec.id]
        single = evaluate(case)
        assert ddp.keys() == single.keys()
        bad = {k: (ddp[k], v) for k, v in single.items() if not _close(ddp[k], v, 1e-9, 1e-12)}
        assert not bad, f"DDP vs one process differ: {bad}"
