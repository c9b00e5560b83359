"""Metric objects give the same result in a 2-process DDP (gloo) run as in one process."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _data():
    g = torch.Generator().manual_seed(0)
    imgs_a = torch.rand(4, 3, 24, 24, generator=g, dtype=torch.float64)
    imgs_b = (imgs_a + 0.1 * torch.randn(4, 3, 24, 24, generator=g, dtype=torch.float64)).clamp(0, 1)
    real = torch.randn(40, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(40, 8, generator=g, dtype=torch.float64) * 1.2 + 0.3
    logits = torch.randn(40, 12, generator=g, dtype=torch.float64) * 2
    lm_a = torch.rand(6, 68, 2, generator=g, dtype=torch.float64) * 100
    lm_b = lm_a + torch.randn(6, 68, 2, generator=g, dtype=torch.float64)
    return imgs_a, imgs_b, real, fake, logits, lm_a, lm_b


def _evaluate(rank: int, world: int) -> dict:
    from condsynth.metrics.fid import FID, KID
    from condsynth.metrics.image_quality import PSNR, SSIM
    from condsynth.metrics.inception_score import InceptionScore
    from condsynth.metrics.lmd import LMD

    imgs_a, imgs_b, real, fake, logits, lm_a, lm_b = _data()
    shard = lambda t: t[rank::world]  # noqa: E731 - each rank sees every world-th sample
    ssim, psnr = SSIM(data_range=1.0), PSNR(data_range=1.0)
    ssim.update(shard(imgs_b), shard(imgs_a))
    psnr.update(shard(imgs_b), shard(imgs_a))
    # KID with one subset holding every sample: a permutation, so rank order cannot change it.
    fid, kid = FID(feature_dim=8), KID(num_subsets=1, subset_size=1000, seed=0)
    for m in (fid, kid):
        m.update(features=shard(real), real=True)
        m.update(features=shard(fake), real=False)
    is_ = InceptionScore(splits=1)  # one split: order across ranks does not matter
    is_.update(logits=shard(logits))
    lmd = LMD("face")
    lmd.update(shard(lm_a).numpy(), shard(lm_b).numpy())
    return {"ssim": float(ssim.compute()["mean"]), "psnr": float(psnr.compute()["mean"]),
            "fid": float(fid.compute()["fid"]), "kid": float(kid.compute()["kid_mean"]),
            "is": float(is_.compute()["is_mean"]), "lmd": float(lmd.compute()["mean"]),
            "lmd_frames": int(lmd.compute()["frames"])}


def _worker(rank: int, world: int, init_file: str, out: str):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        res = _evaluate(rank, world)
        if rank == 0:
            with open(out, "w") as fh:
                json.dump(res, fh)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_metrics_agree_between_ddp_and_single_process(tmp_path):
    single = _evaluate(0, 1)
    out = tmp_path / "ddp.json"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    ddp = json.loads(out.read_text())
    for key in ("ssim", "psnr", "fid", "kid", "is", "lmd", "lmd_frames"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-9), key
    assert single["lmd_frames"] == 6 and np.isfinite(single["fid"])
