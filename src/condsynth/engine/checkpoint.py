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

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from condsynth import __version__
from condsynth.errors import CheckpointError
from condsynth.io.atomic import atomic_dir, atomic_write_text
from condsynth.io.state import load_state, load_tensors, save_state, save_tensors

FORMAT = "condsynth-checkpoint"
ASSETS = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def write_checkpoint(folder: Path, meta: dict, weights: dict[str, torch.Tensor],
                     train_state: Any | None = None) -> Path:
    """Write a checkpoint folder atomically."""
    with atomic_dir(folder) as tmp:
        save_tensors(tmp / "model.safetensors", weights, metadata={"format": FORMAT})
        if train_state is not None:
            save_state(tmp / "train_state", train_state)
        (tmp / "config.json").write_text(json.dumps({"format": FORMAT, "condsynth_version": __version__, **meta},
                                                    indent=2), encoding="utf-8")
    return folder


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


def find_latest(run_dir: str | Path) -> Path | None:
    ckdir = checkpoints_dir(run_dir)
    pointer = ckdir / "latest"
    if pointer.is_file():
        cand = ckdir / pointer.read_text(encoding="utf-8").strip()
        if (cand / "config.json").is_file():
            return cand
    steps = sorted(p for p in ckdir.glob("step_*") if (p / "config.json").is_file() and not p.name.startswith("."))
    return steps[-1] if steps else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, a run folder (its latest checkpoint) or a bundled checkpoint's name."""
    p = Path(path)
    if (p / "config.json").is_file():
        return p
    if p.is_dir():
        latest = find_latest(p)
        if latest is not None:
            return latest
        raise CheckpointError(f"{p}: no checkpoint found (expected config.json + model.safetensors, "
                              f"or a run folder with checkpoints/)")
    bundled = ASSETS / str(path)
    if (bundled / "config.json").is_file():
        return bundled
    names = sorted(q.name for q in ASSETS.iterdir()) if ASSETS.is_dir() else []
    hint = f"; bundled checkpoints: {', '.join(names)}" if names else ""
    raise CheckpointError(f"{p}: checkpoint not found{hint}")


def read_meta(folder: Path) -> dict:
    cfg_file = folder / "config.json"
    try:
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_file}: unreadable checkpoint config ({exc})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{cfg_file}: not a condsynth checkpoint")
    return meta


def load_training_checkpoint(folder: Path) -> tuple[dict, dict[str, torch.Tensor], Any]:
    meta = read_meta(folder)
    weights = load_tensors(folder / "model.safetensors")
    if not (folder / "train_state.json").is_file():
        raise CheckpointError(f"{folder}: an inference export, it cannot resume training")
    return meta, weights, load_state(folder / "train_state")


def subdict(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix)
    return {k[n:]: v for k, v in weights.items() if k.startswith(prefix)}


def load_module_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], where: str) -> None:
    """load_state_dict with a one-line error that names the checkpoint and the first mismatch."""
    own = module.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    bad_shape = [k for k in own if k in weights and own[k].shape != weights[k].shape]
    if missing or unexpected or bad_shape:
        detail = (f"missing '{missing[0]}'" if missing else f"unexpected '{unexpected[0]}'" if unexpected
                  else f"shape of '{bad_shape[0]}' is {tuple(weights[bad_shape[0]].shape)}, "
                       f"expected {tuple(own[bad_shape[0]].shape)}")
        raise CheckpointError(f"{where}: weights do not fit this model ({detail}); was it trained with "
                              f"another config?")
    module.load_state_dict({k: weights[k].to(own[k].dtype) for k in own})


def load_for_inference(path: str | Path, expected_method: str | None = None, use_ema: bool = True,
                       device: str | torch.device = "cpu"):
    """Build the method from the checkpoint's own config and load its inference network.

    Returns ``(method, experiment_config, folder)``. With ``use_ema`` the EMA weights are used
    where the checkpoint has them.
    """
    from condsynth.engine.config import build_experiment_config
    from condsynth.models import get_method_class

    folder = resolve_checkpoint(path)
    meta = read_meta(folder)
    method_name = meta["config"].get("method")
    if expected_method is not None and method_name != expected_method:
        raise CheckpointError(f"{folder}: a '{method_name}' checkpoint, but this command needs a "
                              f"'{expected_method}' one")
    cfg = build_experiment_config(meta["config"])
    method = get_method_class(cfg.method)(cfg.model, cfg.data)
    weights = load_tensors(folder / "model.safetensors")
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
