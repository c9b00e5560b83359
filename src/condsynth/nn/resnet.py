"""ResNet trunks (He et al. 2016): LearningToPaint's ResNet-18 for its actor and critic, and the
standard ImageNet ResNet-18/34 with torchvision's keys (at the end of the file).

LTP's variant (LearningToPaint's ``actor.py`` and ``critic.py``) starts with one 3x3 stride-2 conv
instead of the 7x7 conv and max-pool, gives every stage a stride of 2, and ends in average pooling
(global here, LTP's 4x4 pool at its 128x128 input) and one linear layer. Two flavours:

* ``norm=True``: BatchNorm and ReLU, bias-free convs (the actor);
* ``norm=False``: weight-normalised convs with biases, no BatchNorm, :class:`~condsynth.nn.blocks.TReLU`
  activations (the critic).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.nn.blocks import TReLU


def _weight_norm(norm: bool):
    return (lambda m: m) if norm else nn.utils.parametrizations.weight_norm


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (1x1 projection when the shape changes)."""

    def __init__(self, i: int, o: int, stride: int, norm: bool):
        super().__init__()
        wn = _weight_norm(norm)
        self.c1 = wn(nn.Conv2d(i, o, 3, stride, 1, bias=not norm))
        self.c2 = wn(nn.Conv2d(o, o, 3, 1, 1, bias=not norm))
        self.b1 = nn.BatchNorm2d(o) if norm else nn.Identity()
        self.b2 = nn.BatchNorm2d(o) if norm else nn.Identity()
        self.a1 = nn.ReLU() if norm else TReLU()
        self.a2 = nn.ReLU() if norm else TReLU()
        self.short = nn.Identity()
        if stride != 1 or i != o:
            self.short = nn.Sequential(wn(nn.Conv2d(i, o, 1, stride, bias=not norm)),
                                       nn.BatchNorm2d(o) if norm else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a1(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return self.a2(y + self.short(x))


class ResNet18(nn.Module):
    """LTP's ResNet-18: conv3x3 s2 -> 4 stages of 2 BasicBlocks, each stage stride 2 -> global
    average pool -> FC. ``width`` is the first stage's channels (64 in the paper)."""

    def __init__(self, in_ch: int, out: int, width: int = 64, norm: bool = True):
        super().__init__()
        wn = _weight_norm(norm)
        w = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(wn(nn.Conv2d(in_ch, w[0], 3, 2, 1, bias=not norm)),
                                  nn.BatchNorm2d(w[0]) if norm else nn.Identity(),
                                  nn.ReLU() if norm else TReLU())
        blocks, c = [], w[0]
        for o in w:
            blocks += [BasicBlock(c, o, 2, norm), BasicBlock(o, o, 1, norm)]
            c = o
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# ---------------------------------------------------------------------------------------------
# The standard ImageNet ResNet-18/34 (torchvision's layout and state_dict keys)
# ---------------------------------------------------------------------------------------------

# torchvision's files; the 8 hex digits in the name are the start of the file's sha256
RESNET_FILES = {18: ("resnet18-f37072fd.pth", "f37072fd", "CONDSYNTH_RESNET18"),
                34: ("resnet34-b627a593.pth", "b627a593", "CONDSYNTH_RESNET34")}
RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class TorchvisionBlock(nn.Module):
    """torchvision's ``BasicBlock``: conv-BN-ReLU, conv-BN, + identity or 1x1 projection, ReLU."""

    def __init__(self, i: int, o: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.downsample = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o)) \
            if stride != 1 or i != o else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ImageNetResNet(nn.Module):
    """ResNet-18 or -34 (He et al. 2016) with torchvision's state_dict keys, so the standard
    ImageNet files load into it: 7x7/2 conv, 3x3/2 max-pool, four stages (64-128-256-512), global
    average pool, FC. ``forward`` returns the logits; :meth:`stages` the four stage outputs (the
    encoder of a U-Net initialised from ImageNet, as the thesis's attention module asks).

    ``pretrained=True`` loads torchvision's file through :func:`condsynth.io.weights.resolve_weights`
    (a path, ``$CONDSYNTH_RESNET18``/``34``, the standard caches, checked against its sha256), and
    raises a one-line :class:`~condsynth.errors.MissingWeightsError` when it is not there; it never
    falls back to random weights."""

    def __init__(self, depth: int = 18, num_classes: int = 1000, *, pretrained: bool = False,
                 weights_path=None):
        super().__init__()
        if depth not in RESNET_BLOCKS:
            raise ValueError(f"ResNet depth must be 18 or 34, got {depth}")
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        c = 64
        for s, (n, o) in enumerate(zip(RESNET_BLOCKS[depth], (64, 128, 256, 512))):
            blocks = [TorchvisionBlock(c, o, 1 if s == 0 else 2)] + [TorchvisionBlock(o, o, 1) for _ in range(n - 1)]
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
            c = o
        self.fc = nn.Linear(512, num_classes)
        if pretrained:
            self.load_pretrained(weights_path)

    def load_pretrained(self, weights_path=None):
        from condsynth.errors import UserError
        from condsynth.io.weights import load_state_dict_file, resolve_weights

        filename, sha, env_var = RESNET_FILES[self.depth]
        path = resolve_weights(filename, what=f"ResNet-{self.depth} ImageNet (torchvision)", path=weights_path,
                               env_var=env_var, sha256=sha,
                               source_hint=f"It is torchvision's file, https://download.pytorch.org/models/{filename}.")
        state = load_state_dict_file(path)
        if self.fc.out_features != 1000:        # a new head: take the trunk only
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.") or self.fc.out_features == 1000]
        if missing or unexpected:
            what = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(unexpected[:3])}"
            raise UserError(f"{path}: not a torchvision ResNet-{self.depth} weight file ({what})")
        return path

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        out = []
        for s in range(1, 5):
            x = getattr(self, f"layer{s}")(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.stages(x)[-1], 1).flatten(1))
