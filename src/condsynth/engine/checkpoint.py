"""Checkpoints: one folder per step, safetensors for tensors and JSON for everything else.

A training run's checkpoint, ``RUN/checkpoints/step_00001000/``::

    config.json            {"format": "condsynth-checkpoint", "method", "config", "step", "epoch", ...}
    model.safetensors      "<net>.<param>" for every network, "ema.<net>.<param>" for EMA copies
    train_state.safetensors + train_state.json
                           optimizers, LR schedulers, RNG states, data position (only for --resume)

An inference export (``condsynth export``) holds only ``config.json`` and ``model.safetensors``.
Each folder is written to a temporary name and renamed, so a killed process leaves the previous
checkpoint intact and never a half-written one; ``RUN/checkpoints/latest`` names the newest.
Nothing here is ever unpickled.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from condsynth.errors import CheckpointError
from condsynth.io.atomic import atomic_write_text
from condsynth.io.checkpoint import (ASSETS, FORMAT, checkpoints_dir, find_latest, load_module_weights,  # noqa: F401
                                     open_checkpoint, read_meta, resolve_checkpoint, subdict, write_checkpoint)
from condsynth.io.state import load_state, load_tensors



def save_training_checkpoint(run_dir: str | Path, step: int, meta: dict, weights: dict[str, torch.Tensor],
                             train_state: Any, keep: int = 2) -> Path:
    ckdir = checkpoints_dir(run_dir)
    folder = write_checkpoint(ckdir / f"step_{step:08d}", {**meta, "step": step}, weights, train_state)
    atomic_write_text(ckdir / "latest", folder.name + "\n")
    if keep > 0:
        old = sorted(p for p in ckdir.glob("step_*") if p.is_dir() and not p.name.startswith("."))
        for p in old[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    return folder


def load_training_checkpoint(folder: Path) -> tuple[dict, dict[str, torch.Tensor], Any]:
    meta = read_meta(folder)
    weights = load_tensors(folder / "model.safetensors")
    if not (folder / "train_state.json").is_file():
        raise CheckpointError(f"{folder}: an inference export, it cannot resume training")
    return meta, weights, load_state(folder / "train_state")


def load_for_inference(path: str | Path, expected_method: str | None = None, use_ema: bool = True,
                       device: str | torch.device = "cpu"):
    """Build the method from the checkpoint's own config and load its inference network.

    Returns ``(method, experiment_config, folder)``. With ``use_ema`` the EMA weights are used
    where the checkpoint has them.
    """
    from condsynth.engine.config import build_experiment_config
    from condsynth.models import get_method_class

    folder, meta, weights = open_checkpoint(path, expected_method)
    cfg = build_experiment_config(meta["config"])
    method = get_method_class(cfg.method)(cfg.model, cfg.data)
    names = [method.inference_network] if method.inference_network else list(method.networks())
    for name in names:
        net = getattr(method, name)
        ema = subdict(weights, f"ema.{name}.module.")
        own = subdict(weights, f"{name}.")
        chosen = ema if (use_ema and ema) else own
        if not chosen:
            raise CheckpointError(f"{folder}: has no weights for network '{name}'")
        load_module_weights(net, chosen, str(folder / "model.safetensors"))
    method.to(device)
    return method, cfg, folder


def export_for_inference(path: str | Path, out: str | Path, half: bool = False, use_ema: bool = True) -> Path:
    """Write a small inference-only checkpoint (the inference network, EMA if present)."""
    method, cfg, folder = load_for_inference(path, use_ema=use_ema)
    names = [method.inference_network] if method.inference_network else list(method.networks())
    weights = {}
    for name in names:
        for k, v in getattr(method, name).state_dict().items():
            weights[f"{name}.{k}"] = v.half() if (half and v.is_floating_point()) else v
    meta = read_meta(folder)
    return write_checkpoint(Path(out), {"config": meta["config"], "step": meta.get("step"),
                                        "exported_from": str(folder), "dtype": "float16" if half else "float32"},
                            weights)
