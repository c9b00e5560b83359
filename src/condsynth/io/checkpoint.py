"""Reading and writing checkpoint folders (``config.json`` + ``model.safetensors``), without pickle.

The layout is described in :mod:`condsynth.engine.checkpoint`, which adds training state and
building methods from a checkpoint on top of these helpers. Any layer may read checkpoints
through this module (a pipeline, a method that loads a pretrained part such as the painter's
renderer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from condsynth import __version__
from condsynth.errors import CheckpointError
from condsynth.io.atomic import atomic_dir
from condsynth.io.state import load_tensors, save_state, save_tensors

FORMAT = "condsynth-checkpoint"
PIPELINE_FORMAT = "condsynth-pipeline"
# One lookup for everything bundled: ``assets/<name>/`` (a pipeline folder or a checkpoint folder),
# found by bare name (``pix2pix-scenes64``, ``painting``, ``painting/renderer``).
ASSETS = Path(__file__).resolve().parent.parent / "assets"
_OLD_ASSET_PREFIXES = ("condsynth/assets/", "assets/checkpoints/")   # spellings in older configs
MAX_META_BYTES = 16 * 2 ** 20            # a config.json is a few kB; refuse to parse gigabytes


def is_pipeline_folder(p: Path) -> bool:
    return (p / "pipeline.json").is_file()


def bundled_names() -> list[str]:
    """Names of the bundled checkpoints and pipelines (for hints in error messages)."""
    if not ASSETS.is_dir():
        return []
    found = [q.parent for q in ASSETS.rglob("pipeline.json")]
    found += [q.parent for q in ASSETS.rglob("config.json") if not any(f in q.parents for f in found)]
    return sorted(str(q.relative_to(ASSETS)) for q in found)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


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


def find_latest(run_dir: str | Path) -> Path | None:
    ckdir = checkpoints_dir(run_dir)
    pointer = ckdir / "latest"
    if pointer.is_file():
        name = pointer.read_bytes()[:256].decode("utf-8", "replace").strip()
        cand = ckdir / name
        if name and "/" not in name and "\0" not in name and (cand / "config.json").is_file():
            return cand
    steps = sorted(p for p in ckdir.glob("step_*") if (p / "config.json").is_file() and not p.name.startswith("."))
    return steps[-1] if steps else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, a pipeline folder (``condsynth export``), a run folder (its latest
    checkpoint) or a bundled name."""
    p = Path(path)
    if (p / "config.json").is_file() or is_pipeline_folder(p):
        return p
    if p.is_dir():
        latest = find_latest(p)
        if latest is not None:
            return latest
        raise CheckpointError(f"{p}: no checkpoint found (expected config.json + model.safetensors, "
                              f"or a run folder with checkpoints/)")
    name = str(path)
    for prefix in _OLD_ASSET_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    bundled = ASSETS / name
    if (bundled / "config.json").is_file() or is_pipeline_folder(bundled):
        return bundled
    names = bundled_names()
    hint = f"; bundled checkpoints: {', '.join(names)}" if names else ""
    raise CheckpointError(f"{p}: checkpoint not found{hint}")


def read_meta(folder: Path) -> dict:
    cfg_file = folder / "config.json"
    try:
        if cfg_file.stat().st_size > MAX_META_BYTES:
            raise CheckpointError(f"{cfg_file}: {cfg_file.stat().st_size} bytes, too large for a checkpoint config")
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:    # ValueError: bad JSON, not UTF-8
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CheckpointError(f"{cfg_file}: unreadable checkpoint config ({reason})") from None
    # early exports carry no "format" tag; a config section naming its method identifies them
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or \
            not isinstance(meta["config"].get("method"), str) or meta.get("format", FORMAT) != FORMAT:
        raise CheckpointError(f"{cfg_file}: not a condsynth checkpoint")
    step = meta.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise CheckpointError(f"{cfg_file}: 'step' must be a non-negative integer, got {step!r}")
    return meta


def open_checkpoint(path: str | Path, expected_method: str | tuple[str, ...] | None = None
                    ) -> tuple[Path, dict, dict[str, torch.Tensor]]:
    """``(folder, meta, weights)`` of a checkpoint folder, run folder, bundled name or a
    ``model.safetensors`` file inside a checkpoint folder; checks the method if asked."""
    p = Path(path)
    if p.is_file() and p.suffix != ".safetensors":
        raise CheckpointError(f"{p}: not a checkpoint (give a checkpoint folder, a run folder or the "
                              f"model.safetensors file in a checkpoint folder)")
    folder = p.parent if p.is_file() else resolve_checkpoint(p)
    meta = read_meta(folder)
    method = meta["config"]["method"]
    expected = (expected_method,) if isinstance(expected_method, str) else expected_method
    if expected and method not in expected:
        wanted = "' or '".join(expected)
        raise CheckpointError(f"{folder}: a '{method}' checkpoint, but this needs a '{wanted}' one")
    weights_file = p if p.is_file() else folder / "model.safetensors"
    return folder, meta, load_tensors(weights_file)


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
