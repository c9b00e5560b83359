"""Shared fixtures: tiny datasets and configs that train in a second on a CPU."""

from __future__ import annotations

import os

import pytest
import torch

# Two cores shared by the test process and any subprocess: one intra-op thread avoids
# oversubscription (which slows convolutions tenfold here).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def scenes16(tmp_path_factory):
    """A 24-image scenes dataset at 16x16 in pix2pix's AB layout (train 16 / val 4 / test 4)."""
    from condsynth.data.synth import scenes

    out = tmp_path_factory.mktemp("data") / "scenes16"
    scenes.write_dataset(out, 24, size=16, seed=3, val_fraction=1 / 6, test_fraction=1 / 6, progress=False)
    return out


def tiny_pix2pix_overrides(root, out_dir, steps=6, **extra) -> list[str]:
    items = {
        "model.ngf": 4, "model.ndf": 4, "model.num_downs": 4, "model.d_layers": 1,
        "data.root": str(root), "data.load_size": 18, "data.crop_size": 16,
        "train.out_dir": str(out_dir), "train.steps": steps, "train.batch_size": 2,
        "train.checkpoint_every": 3, "train.log_every": 1, "train.image_every": 3,
        "train.progress": False, "train.threads": 1, "train.seed": 11,
    }
    items.update(extra)
    return [f"{k}={v}" for k, v in items.items()]
