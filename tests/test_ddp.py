"""DDP on CPU: torchrun with 2 processes (gloo) trains, and the ranks end with identical weights."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open

from condsynth.io.state import load_tensors

from conftest import tiny_pix2pix_overrides

HERE = Path(__file__).resolve().parent


def test_two_process_ddp_keeps_ranks_identical(scenes16, tmp_path):
    overrides = tiny_pix2pix_overrides(scenes16, tmp_path / "run", steps=4, **{"train.image_every": 0})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "ddp_worker.py"), str(HERE.parent / "configs/pix2pix/scenes64.yaml"), str(tmp_path),
           *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with safe_open(str(tmp_path / "rank0.safetensors"), "pt") as f:
        assert f.metadata()["world"] == "2"
    r0, r1 = load_tensors(tmp_path / "rank0.safetensors"), load_tensors(tmp_path / "rank1.safetensors")
    trained = [k for k in r0 if not k.startswith("init.")]
    assert all(torch.equal(r0[k], r1[k]) for k in trained)
    # and training did move the weights (the equality above is not trivially true)
    assert not torch.equal(r0["G.down.0.0.weight"], r0["init.down.0.0.weight"])
