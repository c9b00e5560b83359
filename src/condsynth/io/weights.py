"""Finding pretrained weight files on this machine, never downloading them and never faking them.

``resolve_weights`` looks, in order, at:

1. an explicit ``path`` argument (a config value or a command-line flag);
2. the environment variable ``env_var`` (e.g. ``CONDSYNTH_VGG19``), holding a file path;
3. ``$CONDSYNTH_WEIGHTS_DIR/<filename>``;
4. the standard torch cache, ``$TORCH_HOME/hub/checkpoints/<filename>``
   (``~/.cache/torch/hub/checkpoints`` by default), where torchvision and other tools put them;
5. ``~/.cache/condsynth/weights/<filename>``.

If ``sha256`` is given (a full digest or a prefix, like the 8 hex digits in torchvision's file
names) the file is checked. A missing file raises :class:`MissingWeightsError` that names the
file, every place searched and how to provide it. Random weights are only ever used when a caller
asks for them explicitly (``pretrained=False``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from condsynth.errors import MissingWeightsError, UserError

_HASH_CACHE: dict[tuple[str, float, int], str] = {}


def torch_cache_dir() -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def condsynth_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))) / "condsynth" / "weights"


def sha256_of(path: str | Path) -> str:
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime, st.st_size)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def candidate_paths(filename: str, path: str | Path | None = None, env_var: str | None = None) -> list[Path]:
    out: list[Path] = []
    if path:
        out.append(Path(path).expanduser())
    if env_var and os.environ.get(env_var):
        out.append(Path(os.environ[env_var]).expanduser())
    if os.environ.get("CONDSYNTH_WEIGHTS_DIR"):
        out.append(Path(os.environ["CONDSYNTH_WEIGHTS_DIR"]).expanduser() / filename)
    out.append(torch_cache_dir() / filename)
    out.append(condsynth_cache_dir() / filename)
    return out


def resolve_weights(filename: str, *, what: str, path: str | Path | None = None,
                    env_var: str | None = None, sha256: str | None = None,
                    source_hint: str = "") -> Path:
    """Return the path of an existing, checksum-verified weight file, or raise MissingWeightsError."""
    searched = candidate_paths(filename, path, env_var)
    for cand in searched:
        if cand.is_file():
            if sha256:
                digest = sha256_of(cand)
                if not digest.startswith(sha256.lower()):
                    raise UserError(f"{cand}: checksum mismatch for {what} weights "
                                    f"(sha256 {digest[:16]}..., expected {sha256[:16]}...)")
            return cand
        if path and cand == Path(path).expanduser():
            raise MissingWeightsError(f"{cand}: {what} weight file not found")
    hint = f" {source_hint}" if source_hint else ""
    env = f" or set {env_var}=/path/to/{filename}" if env_var else ""
    raise MissingWeightsError(
        f"{what} weights '{filename}' not found; put the file in {torch_cache_dir()}{env} "
        f"(searched: {', '.join(str(p) for p in searched)}).{hint}")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a standard weight file: .safetensors directly, .pth/.pt with ``weights_only=True``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from condsynth.io.state import load_tensors
        return load_tensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the file's fault
        raise UserError(f"{path}: not a loadable weight file ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a state_dict, found {type(obj).__name__}")
    return obj
