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

import contextlib
import shutil
from pathlib import Path
from typing import Any

import torch

from condsynth.engine.memory import check_fits
from condsynth.errors import CheckpointError, ConfigError
from condsynth.io.atomic import atomic_write_text
from condsynth.io.checkpoint import (ASSETS, FORMAT, checkpoints_dir, find_latest, load_module_weights,  # noqa: F401
                                     open_checkpoint, read_meta, resolve_checkpoint, subdict, write_checkpoint)
from condsynth.io.outputs import check_output
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


# The training state's skeleton: key -> accepted types (checked before the trainer reads it).
STATE_KEYS = {"optimizers": dict, "schedulers": dict, "rng": dict, "epoch": int, "batch_in_epoch": int}
RNG_KEYS = ("torch", "numpy", "python")


def check_train_state(state: Any, where: Path) -> Any:
    """The training state as :meth:`Trainer.save` writes it, or a CheckpointError naming the file."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: not a training state (a {type(state).__name__}, expected a mapping)")
    for key, tp in STATE_KEYS.items():
        value = state.get(key)
        if not isinstance(value, tp) or isinstance(value, bool) or (tp is int and value < 0):
            raise CheckpointError(f"{where}: '{key}' is missing or not a {'non-negative integer' if tp is int else 'mapping'}")
    missing = [k for k in RNG_KEYS if k not in state["rng"]]
    if missing:
        raise CheckpointError(f"{where}: 'rng' has no '{missing[0]}' state")
    return state


@contextlib.contextmanager
def state_errors(run_dir: str | Path):
    """A checkpoint whose training state does not fit this run (another optimizer layout, a
    garbled RNG state) as one CheckpointError naming the checkpoint, not a traceback."""
    try:
        yield
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        where = find_latest(run_dir) or run_dir
        raise CheckpointError(f"{where}: its training state does not fit this run "
                              f"({type(exc).__name__}: {exc})") from None


def load_training_checkpoint(folder: Path) -> tuple[dict, dict[str, torch.Tensor], Any]:
    meta = read_meta(folder)
    weights = load_tensors(folder / "model.safetensors")
    if not (folder / "train_state.json").is_file():
        raise CheckpointError(f"{folder}: an inference export, it cannot resume training")
    _build(folder, meta)            # its config.json is checked as strictly as a YAML config
    return meta, weights, check_train_state(load_state(folder / "train_state"), folder / "train_state.json")


def _build(folder: Path, meta: dict):
    """The experiment config a checkpoint's config.json holds, checked as strictly as a YAML file
    (errors name the file), and the method's class, once its networks are known to fit here."""
    from condsynth.engine.config import build_experiment_config
    from condsynth.models import get_method_class

    try:
        cfg = build_experiment_config(meta["config"])
        method_cls = get_method_class(cfg.method)
        check_fits(method_cls, cfg.model, cfg.data, training=False)
    except ConfigError as exc:
        raise CheckpointError(f"{folder / 'config.json'}: {exc}") from None
    return cfg, method_cls


def load_for_inference(path: str | Path, expected_method: str | None = None, use_ema: bool = True,
                       device: str | torch.device = "cpu"):
    """Build the method from the checkpoint's own config and load its inference network.

    Returns ``(method, experiment_config, folder)``. With ``use_ema`` the EMA weights are used
    where the checkpoint has them.
    """
    folder, meta, weights = open_checkpoint(path, expected_method)
    cfg, method_cls = _build(folder, meta)
    method = method_cls(cfg.model, cfg.data)
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


def run_of(folder: Path) -> Path:
    """The run folder a checkpoint belongs to (``RUN/checkpoints/step_N`` -> ``RUN``), else itself."""
    return folder.parent.parent if folder.parent.name == "checkpoints" else folder


def checkpoint_inputs(path: str | Path) -> list[Path]:
    """What reading checkpoint ``path`` reads: the path, its checkpoint folder and its run folder
    (outputs must stay out of all three); just the path if it does not resolve."""
    p = Path(path)
    try:
        folder = p.parent if p.is_file() else resolve_checkpoint(p)
    except CheckpointError:
        return [p]
    return [p, folder, run_of(folder)]


def export_for_inference(path: str | Path, out: str | Path, half: bool = False, use_ema: bool = True,
                         overwrite: bool = False) -> Path:
    """Write a small inference-only checkpoint (the inference network, EMA if present).

    ``out`` follows :mod:`condsynth.io.outputs`: never the checkpoint or the run it comes from,
    nor a folder holding them; an existing ``out`` is replaced only with ``overwrite``, once the
    new export is complete."""
    method, cfg, folder = load_for_inference(path, use_ema=use_ema)
    names = [method.inference_network] if method.inference_network else list(method.networks())
    weights = {}
    for name in names:
        for k, v in getattr(method, name).state_dict().items():
            weights[f"{name}.{k}"] = v.half() if (half and v.is_floating_point()) else v
    meta = read_meta(folder)
    size = sum(v.numel() * v.element_size() for v in weights.values())
    target = check_output(out, kind="folder", inputs=checkpoint_inputs(path), overwrite=overwrite,
                          need_bytes=size)
    write_checkpoint(target, {"config": meta["config"], "step": meta.get("step"), "exported_from": str(folder),
                              "dtype": "float16" if half else "float32"}, weights)
    return Path(out)
