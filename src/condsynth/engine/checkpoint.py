"""Training checkpoints, frozen parts, and the export format that pipelines load.

A training run's checkpoint, ``RUN/checkpoints/step_00001000/``::

    config.json            {"format": "condsynth-checkpoint", "method", "config", "step", "epoch",
                            "frozen": {name: {path, sha256, method, network}}, ...}
    model.safetensors      "<net>.<param>" for every trained network, "ema.<net>.<param>" for EMA copies
    train_state.safetensors + train_state.json
                           optimizers, LR schedulers, RNG states, data position, method state

An export (``condsynth export``, ``Pipeline.save_pretrained``) is a pipeline folder, one
component per network, each a checkpoint folder of its own::

    pipeline.json          {"format": "condsynth-pipeline", "method", "pipeline", "config",
                            "components": {name: {"path", "kind": "trained"|"frozen", ...}}}
    G/config.json + G/model.safetensors ("G.<param>")
    renderer/...           a frozen part, with the config of the run that trained it

Every folder is written to a temporary name and renamed, so a killed process leaves the
previous one intact and never a half-written one. Nothing here is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from condsynth import __version__
from condsynth.engine.memory import check_fits
from condsynth.errors import CheckpointError, ConfigError, UserError
from condsynth.io.atomic import atomic_dir, atomic_write_text
from condsynth.io.checkpoint import (PIPELINE_FORMAT, checkpoints_dir, find_latest, load_module_weights,
                                     open_checkpoint, read_meta, resolve_checkpoint, sha256_file, subdict,
                                     write_checkpoint)
from condsynth.io.outputs import check_output
from condsynth.io.state import load_state, load_tensors


# ------------------------------------------------------------------------------ training checkpoints

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


# The training state's skeleton: key -> accepted type (checked before the trainer reads it).
STATE_KEYS = {"optimizers": dict, "schedulers": dict, "rng": dict, "epoch": int, "batch_in_epoch": int}
RNG_KEYS = ("torch", "numpy", "python")


def check_train_state(state: Any, where: Path) -> Any:
    """The training state as :meth:`Trainer.save` writes it, or a CheckpointError naming the file."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: not a training state (a {type(state).__name__}, expected a mapping)")
    for key, tp in STATE_KEYS.items():
        value = state.get(key)
        if not isinstance(value, tp) or isinstance(value, bool) or (tp is int and value < 0):
            kind = "non-negative integer" if tp is int else "mapping"
            raise CheckpointError(f"{where}: '{key}' is missing or not a {kind}")
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
    return meta, weights, check_train_state(load_state(folder / "train_state"), folder / "train_state.json")


def ema_weights(weights: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """EMA weights of network ``name``: ``ema.<name>.<param>``, or the older form with the
    ``AveragedModel`` wrapper's ``module.`` still inside the key."""
    ema = subdict(weights, f"ema.{name}.")
    if any(k.startswith("module.") for k in ema):
        ema = subdict(ema, "module.")
    ema.pop("n_averaged", None)
    return ema


# ------------------------------------------------------------------------------ frozen parts

def load_network(path: str | Path, expected_method=None, network: str | None = None, use_ema: bool = True,
                 device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """One network from a checkpoint, export component or run folder, built from that checkpoint's
    own config; returns ``(module, record)`` where the record names its file and checksum."""
    method, _, folder = load_for_inference(path, expected_method=expected_method, use_ema=use_ema, device=device)
    names = [network] if network else list(method.inference_networks)
    if len(names) != 1 or getattr(method, names[0], None) is None:
        raise CheckpointError(f"{folder}: say which network to take from this '{method.name}' checkpoint "
                              f"(it has {', '.join(method.inference_networks)})")
    weights_file = _weights_file(folder, names[0])
    record = {"path": str(path), "method": method.name, "network": names[0],
              "sha256": sha256_file(weights_file), "config": _source_config(folder)}
    return getattr(method, names[0]).requires_grad_(False).eval(), record


def _source_config(folder: Path) -> dict:
    if (folder / "pipeline.json").is_file():
        return read_pipeline(folder)["config"]
    return read_meta(folder)["config"]


def attach_frozen(method, name: str, net: torch.nn.Module, record: dict) -> None:
    """Hand a loaded frozen part to the method and remember where it came from (for exports); the record is
    in ``method.frozen_records`` before ``method.attach_frozen`` runs, so a method can check the part's config."""
    if not hasattr(method, "frozen_records"):
        method.frozen_records = {}
    method.frozen_records[name] = record
    method.attach_frozen(name, net)


def load_frozen_parts(method, device) -> dict:
    """Load and attach every part of ``method.frozen_networks()``; returns the records (path,
    method, network, sha256) that checkpoints store instead of the weights. A resumed run
    compares them with its checkpoint's (``Trainer._check_config_change``)."""
    records = {}
    for name, ref in method.frozen_networks().items():
        net, rec = load_network(ref.path, ref.method, ref.network, device=device)
        attach_frozen(method, name, net.to(device), rec)
        records[name] = {k: v for k, v in rec.items() if k != "config"}
    return records


# ------------------------------------------------------------------------------ inference

def _weights_file(folder: Path, network: str) -> Path:
    sub = folder / network / "model.safetensors"
    return sub if sub.is_file() else folder / "model.safetensors"


def _build_method(raw_config: dict, where: Path):
    """The method a checkpoint's or export's config describes, checked as strictly as a YAML config
    (errors name ``where``, the file) and refused before it is built if its networks cannot fit
    in memory here."""
    from condsynth.engine.config import build_experiment_config
    from condsynth.models import get_method_class

    try:
        cfg = build_experiment_config(raw_config)
        method_cls = get_method_class(cfg.method)
        check_fits(method_cls, cfg.model, cfg.data, training=False)
    except ConfigError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    # building draws initial weights that the checkpoint then replaces: loading a network (a
    # frozen part, say) must not shift the caller's random stream (a training run's init)
    with torch.random.fork_rng(devices=[]):
        return method_cls(cfg.model, cfg.data), cfg


def read_pipeline(folder: Path) -> dict:
    f = folder / "pipeline.json"
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{f}: unreadable pipeline file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != PIPELINE_FORMAT or \
            not isinstance(meta.get("config"), dict) or not isinstance(meta.get("components"), dict):
        raise CheckpointError(f"{f}: not a condsynth pipeline file")
    return meta


def _load_pipeline_folder(folder: Path, expected: tuple[str, ...] | None, device):
    meta = read_pipeline(folder)
    method_name = meta["config"].get("method")
    if expected and method_name not in expected:
        raise CheckpointError(f"{folder}: a '{method_name}' pipeline, but this needs a '{' or '.join(expected)}' one")
    method, cfg = _build_method(meta["config"], folder / "pipeline.json")
    frozen = method.frozen_networks()
    for name, comp in meta["components"].items():
        sub = folder / str(comp.get("path", name))
        if comp.get("kind") == "frozen" or name in frozen:
            ref = frozen.get(name)
            net, rec = load_network(sub, ref.method if ref else None, comp.get("network"), device=device)
            if comp.get("sha256") and rec["sha256"] != comp["sha256"]:
                raise CheckpointError(f"{sub}: weights differ from the checksum in {folder / 'pipeline.json'}")
            attach_frozen(method, name, net, rec)
        else:
            _, _, weights = open_checkpoint(sub)
            load_module_weights(getattr(method, name), subdict(weights, f"{name}."),
                                str(sub / "model.safetensors"))
    held = meta.get("networks", method.inference_networks)
    missing = [n for n in (*held, *method.inference_frozen()) if n not in meta["components"]]
    if missing:
        raise CheckpointError(f"{folder}: no component '{missing[0]}' in pipeline.json")
    for name in method.inference_networks:
        if name not in held:
            setattr(method, name, None)     # a partial export (export --part): this network was left out
    return method, cfg


def load_for_inference(path: str | Path, expected_method: str | tuple[str, ...] | None = None,
                       use_ema: bool = True, device: str | torch.device = "cpu"):
    """Build the method from a checkpoint's own config and load what inference needs.

    ``path``: a pipeline folder (an export), a training checkpoint, a run folder or a bundled
    name. Loads every inference network (EMA weights where present and ``use_ema``) and every
    frozen part. Returns ``(method, experiment_config, folder)``.
    """
    expected = (expected_method,) if isinstance(expected_method, str) else expected_method
    folder = resolve_checkpoint(path)
    if (folder / "pipeline.json").is_file():
        method, cfg = _load_pipeline_folder(folder, expected, device)
    else:
        folder, meta, weights = open_checkpoint(folder, expected)
        method, cfg = _build_method(meta["config"], folder / "config.json")
        names = list(method.inference_networks) or list(method.networks())
        if meta.get("network") in names:
            names = [meta["network"]]       # one network's component of an export (a frozen part of another method)
        for name in names:
            if getattr(method, name, None) is None:
                continue            # an optional network this config does not use
            ema, own = ema_weights(weights, name), subdict(weights, f"{name}.")
            chosen = ema if (use_ema and ema) else own
            if not chosen:
                raise CheckpointError(f"{folder}: has no weights for network '{name}'")
            load_module_weights(getattr(method, name), chosen, str(folder / "model.safetensors"))
        recorded = meta.get("frozen") or {}
        for name, ref in method.frozen_networks().items():
            rec = recorded.get(name, {})
            net, new = load_network(rec.get("path", ref.path), ref.method, ref.network, device=device)
            if rec.get("sha256") and rec["sha256"] != new["sha256"]:
                raise CheckpointError(f"{folder}: its frozen '{name}' ({rec.get('path')}) has changed since "
                                      f"training (sha256 {rec['sha256'][:12]} -> {new['sha256'][:12]})")
            attach_frozen(method, name, net, new)
    method.to(device)
    method.prepare_for_inference()
    return method, cfg, folder


def best_checkpoint(run_dir: str | Path, key: str, lower_is_better: bool = False) -> tuple[Path, int, float]:
    """The run's saved checkpoint whose step logged the best value of ``key`` (e.g. ``eval/damsm/r_precision``)
    in ``log.jsonl``: ``(folder, step, value)``; ties go to the earlier step, NaN never wins. Evaluations only
    count at steps that have a checkpoint (set ``train.eval_every`` to ``train.checkpoint_every``)."""
    import math

    run = Path(run_dir)
    log = run / "log.jsonl"
    if not log.is_file():
        raise UserError(f"{run}: no log.jsonl (not a training run folder)")
    values: dict[int, float] = {}
    keys: set[str] = set()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue                        # a line cut by a kill: the rest of the log still counts
        if not isinstance(rec, dict):
            continue
        keys.update(k for k in rec if k.startswith("eval/"))
        value = rec.get(key)
        if isinstance(value, (int, float)) and not math.isnan(value) and isinstance(rec.get("step"), int):
            values[rec["step"]] = float(value)
    saved = {int(p.name.split("_")[1]): p for p in checkpoints_dir(run).glob("step_*")
             if (p / "config.json").is_file() and p.name.split("_")[1].isdigit()}
    scored = sorted((step, values[step]) for step in saved if step in values)
    if not scored:
        known = ", ".join(sorted(keys)) or "none"
        raise UserError(f"{run}: no checkpoint has a logged '{key}' (eval keys in its log: {known}; evaluations "
                        f"count at checkpoint steps, so set train.eval_every to train.checkpoint_every)")
    target = (min if lower_is_better else max)(v for _, v in scored)
    step, value = next(sv for sv in scored if sv[1] == target)     # scored is by step: the earliest of equals
    return saved[step], step, value


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


def exported_networks(method, part: str | None) -> tuple[str, ...]:
    """The inference networks an export of ``part`` (None: the whole method) holds."""
    if part is None:
        return tuple(method.inference_networks)
    parts = method.export_parts
    if part not in parts:
        known = f"one of {', '.join(parts)}" if parts else "none: it is exported whole"
        raise UserError(f"'{method.name}' has no export part '{part}' ({known})")
    return tuple(parts[part])


def save_pipeline(method, cfg, out: str | Path, half: bool = False, source: str = "",
                  extra: dict | None = None, overwrite: bool = False, part: str | None = None) -> Path:
    """Write ``method``'s inference networks and frozen parts as a pipeline folder (atomically).

    ``part``: one of the method's ``export_parts`` (e.g. CycleGAN's ``"BtoA"``): only its inference
    networks are written, and pipeline.json lists them under ``"networks"``.

    ``out`` follows :mod:`condsynth.io.outputs`: never the checkpoint it comes from (``source``),
    its run or a frozen part's checkpoint, nor a folder holding them; an existing ``out`` is
    replaced only with ``overwrite``, once the new folder is complete."""
    needed = method.inference_frozen()
    frozen = {n: ref for n, ref in method.frozen_networks().items() if n in needed}   # training-only ones stay out
    components: dict[str, dict] = {}
    exported = exported_networks(method, part)

    def tensors(net, name):
        return {f"{name}.{k}": (v.half() if half and v.is_floating_point() else v).detach().cpu()
                for k, v in net.state_dict().items()}

    nets = [getattr(method, n, None) for n in (*exported, *frozen)]
    size = sum(v.numel() * (2 if half and v.is_floating_point() else v.element_size())
               for net in nets if net is not None for v in net.state_dict().values())
    reads = [p for rec in getattr(method, "frozen_records", {}).values() for p in checkpoint_inputs(rec["path"])]
    out_real = check_output(out, kind="folder", overwrite=overwrite, need_bytes=size,
                            inputs=[*(checkpoint_inputs(source) if source else []), *reads])
    out = Path(out)
    with atomic_dir(out_real) as tmp:
        for name in exported:
            net = getattr(method, name, None)
            if net is None:
                continue            # an optional network this config does not use
            write_checkpoint(tmp / name, {"config": cfg.to_dict(), "network": name,
                                          "dtype": "float16" if half else "float32"}, tensors(net, name))
            components[name] = {"path": name, "kind": "trained"}
        for name in frozen:
            rec = getattr(method, "frozen_records", {}).get(name)
            if rec is None:
                raise CheckpointError(f"frozen part '{name}' of '{method.name}' was never loaded; nothing to export")
            net_name = rec["network"]
            write_checkpoint(tmp / name, {"config": rec["config"], "network": net_name,
                                          "dtype": "float16" if half else "float32"},
                             tensors(getattr(method, name), net_name))
            components[name] = {"path": name, "kind": "frozen", "method": rec["method"], "network": net_name,
                                "trained_as": rec["path"], "trained_sha256": rec["sha256"],
                                "sha256": sha256_file(tmp / name / "model.safetensors")}
        doc = {"format": PIPELINE_FORMAT, "condsynth_version": __version__, "method": method.name,
               "pipeline": method.pipeline, "config": cfg.to_dict(), "components": components,
               "exported_from": source, "dtype": "float16" if half else "float32", **(extra or {})}
        if part is not None:
            doc["part"], doc["networks"] = part, list(exported)
        (tmp / "pipeline.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return out


__all__ = ["best_checkpoint", "checkpoint_inputs", "ema_weights", "find_latest", "load_for_inference", "load_frozen_parts",
           "load_network", "load_training_checkpoint", "read_pipeline", "save_pipeline", "save_training_checkpoint"]
