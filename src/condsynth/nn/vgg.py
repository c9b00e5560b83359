"""VGG-16 and VGG-19 feature extractors, laid out like torchvision's ImageNet weight files.

The convolutional trunk is ``self.features``, an ``nn.Sequential`` with exactly torchvision's
indices (conv, ReLU, ..., max-pool), so ``vgg16-397923af.pth`` and ``vgg19-dcbb9e9d.pth`` load
into it key for key (``features.0.weight``, ``features.0.bias``, ``features.2.weight``, ...).
Their ``classifier.*`` keys are ignored: every user here wants features, not ImageNet logits.
Architectures: Simonyan & Zisserman 2015, configurations D (VGG-16) and E (VGG-19), 3x3 convs
with padding 1, 2x2 max-pool with stride 2, no batch norm.

Taps are named after the layers (block b, conv i inside the block):
``conv{b}_{i}`` (before the ReLU), ``relu{b}_{i}`` (after it), ``pool{b}``. Also accepted:
the Keras names ``block{b}_conv{i}`` (Keras folds the ReLU into the conv, so they mean
``relu{b}_{i}``) and ``block{b}_pool``, and plain integers, which index ``features`` as in
torchvision (``2`` = conv1_2; the painting spec's "layer 17" = conv4_1 of VGG-16).

Input convention (recorded because the weights only make sense with it): the torchvision files were
trained on RGB in [0, 1] normalised with the ImageNet mean (0.485, 0.456, 0.406) and std
(0.229, 0.224, 0.225). :class:`VGGFeatures` takes images in ``input_range`` ([-1, 1] by default,
the range of every generator here; or [0, 1]) and applies that normalisation itself
(``normalization="imagenet"``). ``"caffe"`` gives the Caffe/Keras convention instead (BGR, 0-255,
mean (103.939, 116.779, 123.68) subtracted) for weights converted from those frameworks;
``"none"`` passes the input through. A 1-channel input is repeated to 3 channels.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from condsynth.errors import UserError
from condsynth.io.weights import load_state_dict_file, resolve_weights

# Channels per conv, "M" for a max-pool (torchvision's cfgs "D" and "E").
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}

# torchvision's ImageNet files; the 8 hex digits in the name are the start of the file's sha256.
WEIGHT_FILES = {
    "vgg16": ("vgg16-397923af.pth", "397923af", "CONDSYNTH_VGG16"),
    "vgg19": ("vgg19-dcbb9e9d.pth", "dcbb9e9d", "CONDSYNTH_VGG19"),
}
_WEIGHT_SOURCE = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def layer_names(arch: str) -> list[str]:
    """Names of ``features[0], features[1], ...``: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..."""
    names, block, conv = [], 1, 0
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


def torchvision_feature_keys(arch: str) -> list[str]:
    """The ``features.*`` keys of torchvision's weight file for ``arch``, in order."""
    return [f"features.{i}.{p}" for i, name in enumerate(layer_names(arch)) if name.startswith("conv")
            for p in ("weight", "bias")]


def tap_index(arch: str, tap: str | int) -> int:
    """Index into ``features`` of a tap given by name, Keras name or integer index."""
    names = layer_names(arch)
    if isinstance(tap, int):
        if not 0 <= tap < len(names):
            raise ValueError(f"{arch} has features[0..{len(names) - 1}], got index {tap}")
        return tap
    keras = re.fullmatch(r"block(\d)_(conv(\d)|pool)", tap)
    if keras:
        tap = f"relu{keras.group(1)}_{keras.group(3)}" if keras.group(3) else f"pool{keras.group(1)}"
    if tap not in names:
        raise ValueError(f"unknown {arch} layer '{tap}'; known: {', '.join(names)}")
    return names.index(tap)


def _build_features(arch: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            # Not in-place (torchvision's is): a conv tap must keep its pre-activation values.
            layers += [nn.Conv2d(in_ch, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(item)
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """Frozen VGG trunk returning the activations at ``taps`` as a dict (in the order given).

    ``pretrained=True`` (the default) loads torchvision's ImageNet file through
    :func:`~condsynth.io.weights.resolve_weights`: an explicit ``weights_path``, then
    ``$CONDSYNTH_VGG16`` / ``$CONDSYNTH_VGG19``, then the standard caches; the sha256 is checked
    against the prefix in the file name. A missing file raises
    :class:`~condsynth.errors.MissingWeightsError` naming it. Random weights only with
    ``pretrained=False`` (tests, or a user who asks for them).

    The forward pass stops at the deepest tap. Parameters are frozen unless ``requires_grad``;
    gradients still flow to the input, as a perceptual loss needs.
    """

    def __init__(self, arch: str = "vgg19", taps: Sequence[str | int] = ("relu1_1", "relu2_1", "relu3_1",
                                                                            "relu4_1", "relu5_1"),
                 *, pretrained: bool = True, weights_path: str | Path | None = None,
                 weights_sha256: str | None = None, input_range: tuple[float, float] = (-1.0, 1.0),
                 normalization: str = "imagenet",
                 requires_grad: bool = False):
        super().__init__()
        if arch not in VGG_CONFIGS:
            raise ValueError(f"arch must be one of {', '.join(VGG_CONFIGS)}, got '{arch}'")
        if normalization not in ("imagenet", "caffe", "none"):
            raise ValueError(f"normalization must be imagenet, caffe or none, got '{normalization}'")
        if not taps:
            raise ValueError("at least one tap is needed")
        self.arch = arch
        self.taps = [str(t) for t in taps]
        self._tap_index = {str(t): tap_index(arch, t) for t in taps}
        self._last = max(self._tap_index.values())
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.normalization = normalization
        self.features = _build_features(arch)
        # Buffers not saved in state_dict, so the keys stay exactly torchvision's.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("caffe_mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.weights_file: Path | None = None
        if pretrained:
            self.load_pretrained(weights_path, weights_sha256)
        self.requires_grad_(requires_grad)
        self.eval()

    def load_pretrained(self, weights_path: str | Path | None = None, weights_sha256: str | None = None) -> Path:
        """Load torchvision's file (see the class docstring). ``weights_sha256`` replaces the standard
        file's checksum, for a converted file with the same keys (e.g. from Caffe; then use
        ``normalization="caffe"``)."""
        filename, sha, env_var = WEIGHT_FILES[self.arch]
        path = resolve_weights(filename, what=f"{self.arch.upper()} ImageNet (torchvision)", path=weights_path,
                               env_var=env_var, sha256=weights_sha256 or sha,
                               source_hint=f"It is torchvision's file, {_WEIGHT_SOURCE[self.arch]}.")
        state = load_state_dict_file(path)
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        missing, unexpected = self.features.load_state_dict(features, strict=False)
        if missing or unexpected:
            what = f"missing {', '.join('features.' + k for k in missing[:4])}" if missing else \
                f"unexpected {', '.join('features.' + k for k in unexpected[:4])}"
            raise UserError(f"{path}: not a torchvision {self.arch} weight file ({what})")
        self.weights_file = path
        return path

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map an image batch from ``input_range`` to the network's input convention."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        lo, hi = self.input_range
        if self.normalization == "none":
            return x
        x01 = (x - lo) / (hi - lo)
        if self.normalization == "imagenet":
            return (x01 - self.mean) / self.std
        return x01.flip(1) * 255.0 - self.caffe_mean

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.normalize(x)
        by_index: dict[int, torch.Tensor] = {}
        wanted = set(self._tap_index.values())
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                by_index[i] = h
            if i == self._last:
                break
        return {t: by_index[self._tap_index[t]] for t in self.taps}

    def extra_repr(self) -> str:
        return f"arch={self.arch}, taps={self.taps}, input_range={self.input_range}, normalization={self.normalization}"


def vgg16_features(taps: Sequence[str | int] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"), **kwargs) -> VGGFeatures:
    return VGGFeatures("vgg16", taps, **kwargs)


def vgg19_features(taps: Sequence[str | int] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                   **kwargs) -> VGGFeatures:
    return VGGFeatures("vgg19", taps, **kwargs)
