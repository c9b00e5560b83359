"""The training engine: exact resume (also after SIGKILL), checkpoints, NaN stop, schedules."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from condsynth.engine import checkpoint as ckpt
from condsynth.engine.config import ScheduleConfig, load_experiment_config
from condsynth.engine.trainer import Trainer, lr_factor, train
from condsynth.errors import CheckpointError, TrainingDiverged
from condsynth.io.state import load_tensors

from conftest import tiny_pix2pix_overrides

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/pix2pix/scenes64.yaml"


def final_weights(run_dir) -> dict:
    return load_tensors(ckpt.find_latest(run_dir) / "model.safetensors")


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"{len(diff)} tensors differ, e.g. {diff[:3]}"


def test_interrupted_and_resumed_equals_uninterrupted(scenes16, tmp_path):
    full = load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, tmp_path / "full", steps=7,
                                                                    **{"train.ema_decay": 0.9}))
    train(full)
    # the same run stopped after 3 steps (a checkpoint), then resumed to 7 in a new Trainer
    part = load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, tmp_path / "part", steps=3,
                                                                    **{"train.ema_decay": 0.9}))
    train(part)
    resumed = load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, tmp_path / "part", steps=7,
                                                                       **{"train.ema_decay": 0.9}))
    result = train(resumed, resume=True)
    assert result.step == 7
    a, b = final_weights(tmp_path / "full"), final_weights(tmp_path / "part")
    assert any(k.startswith("ema.G.") for k in a)
    assert_same(a, b)
    start = load_tensors(ckpt.checkpoints_dir(tmp_path / "part") / "step_00000006" / "model.safetensors")
    assert not torch.equal(start["G.down.0.0.weight"], a["G.down.0.0.weight"])  # it did train


def test_sigkill_then_resume(scenes16, tmp_path):
    """Kill -9 a training process after its first checkpoint; --resume finishes with the weights
    of an uninterrupted run."""
    run = tmp_path / "killed"
    args = [sys.executable, "-m", "condsynth", "train", str(CONFIG),
            *tiny_pix2pix_overrides(scenes16, run, steps=40, **{"train.checkpoint_every": 2})]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoints" / "step_00000004").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = ckpt.find_latest(run)
    assert killed_at is not None and int(killed_at.name.split("_")[1]) < 40
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stdout
    train(load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, tmp_path / "ref", steps=40,
                                                                   **{"train.checkpoint_every": 2})))
    assert_same(final_weights(run), final_weights(tmp_path / "ref"))


def test_nan_stops_and_keeps_last_good_checkpoint(scenes16, tmp_path, monkeypatch):
    cfg = load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, tmp_path / "nan", steps=6))
    trainer = Trainer(cfg)
    real_step = trainer.method.training_step

    def poisoned(batch, ctx):
        logs = real_step(batch, ctx)
        if ctx.global_step == 4:
            logs["loss_G_L1"] = torch.tensor(float("nan"))
        return logs

    monkeypatch.setattr(trainer.method, "training_step", poisoned)
    with pytest.raises(TrainingDiverged, match="loss 'loss_G_L1' is nan at step 5; last good checkpoint: .*step_00000003"):
        trainer.fit()
    assert ckpt.find_latest(tmp_path / "nan").name == "step_00000003"


def test_checkpoint_contents_and_other_model_rejected(scenes16, tmp_path):
    cfg = load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, tmp_path / "r", steps=3))
    train(cfg)
    folder = ckpt.find_latest(tmp_path / "r")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors",
                                                         "train_state.json", "train_state.safetensors"]
    method, loaded_cfg, _ = ckpt.load_for_inference(folder)
    assert loaded_cfg.model.ngf == 4  # the config travels inside the checkpoint
    with pytest.raises(CheckpointError, match="a 'pix2pix' checkpoint, but this needs a 'painting' one"):
        ckpt.load_for_inference(folder, expected_method="painting")
    # same method, other architecture: the weights do not fit
    import json
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["model"]["ngf"] = 8
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="weights do not fit this model"):
        ckpt.load_for_inference(folder)


def test_lr_schedules():
    lin = lr_factor(ScheduleConfig(kind="linear", constant_steps=10, decay_steps=10))
    assert [lin(s) for s in (0, 9, 10, 15, 20, 25)] == [1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    step = lr_factor(ScheduleConfig(kind="step", step_size=5, gamma=0.5))
    assert [step(s) for s in (0, 4, 5, 10)] == [1.0, 1.0, 0.5, 0.25]


def test_logs_tensorboard_jsonl_and_grids(scenes16, tmp_path):
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "logs"
    train(load_experiment_config(CONFIG, tiny_pix2pix_overrides(scenes16, run, steps=3,
                                                                   **{"train.grad_clip": 1.0})))
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert {"loss_D", "loss_G_L1", "lr/G", "steps_per_s", "epoch"} <= rows[0].keys()
    assert sorted(p.name for p in (run / "images").iterdir()) == ["step_00000003.png"]
    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    assert len(acc.Scalars("loss_G_L1")) == 3
    assert len(acc.Tags()["images"]) == 1
    assert (run / "config.yaml").is_file()
