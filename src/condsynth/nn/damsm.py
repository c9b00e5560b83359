"""DAMSM image encoders: local region features ``B x D x H x W`` and a global feature ``B x D``.

- :class:`InceptionImageEncoder`: AttnGAN's ``CNN_ENCODER``. Inception-v3 (ImageNet, frozen), input
  bilinearly resized to 299 x 299; ``Mixed_6e`` (768 x 17 x 17) -> 1x1 conv -> D local features, the
  2048-d average pool after ``Mixed_7c`` -> linear -> D. Only the two projections train (init
  uniform +-0.1, AttnGAN ``init_trainable_weights``). The trunk is the project's TF-FID Inception
  (:mod:`condsynth.nn.inception`), loaded from the user's weight file through
  :func:`condsynth.nn.inception.load_fid_inception` (never random: a missing file is an error naming
  where it was looked for). Its pooling is TF's, so this is "not AttnGAN's encoder" exactly
  (errata §3.2); the trunk's weights stay out of checkpoints (they come from the file).
- :class:`SmallCNNEncoder`: a small native-resolution CNN for synthetic worlds on a CPU (errata §3.2:
  Inception at 299² is out of reach there). Four 3x3 conv-BN-LeakyReLU layers, two of them stride 2,
  give the local grid (16 x 16 for a 64² image); two more stride-2 layers and an average pool give
  the global feature. Trained from scratch with the text encoder. Two options for worlds whose captions
  name positions (ours, not AttnGAN's): ``global_pool="flatten"`` feeds the whole 4 x 4 map to the
  linear layer instead of its mean, so the global code (and through the sentence loss, the sentence
  embedding) keeps where the object is; ``coords=True`` appends two coordinate channels to the image
  (CoordConv), so each local region also knows where it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.nn.blocks import ConvNormAct


class SmallCNNEncoder(nn.Module):
    def __init__(self, dim: int = 256, width: int = 32, global_pool: str = "mean", coords: bool = False,
                 image_size: int = 64):
        super().__init__()
        if global_pool not in ("mean", "flatten"):
            raise ValueError(f"global_pool: mean or flatten, got '{global_pool}'")
        w = width
        self.global_pool, self.coords = global_pool, coords
        self.local = nn.Sequential(ConvNormAct(3 + 2 * coords, w, 3, 2, act="lrelu"),
                                   ConvNormAct(w, 2 * w, 3, 1, act="lrelu"),
                                   ConvNormAct(2 * w, 4 * w, 3, 2, act="lrelu"),
                                   ConvNormAct(4 * w, 4 * w, 3, 1, act="lrelu"))
        self.deep = nn.Sequential(ConvNormAct(4 * w, 8 * w, 3, 2, act="lrelu"),
                                  ConvNormAct(8 * w, 8 * w, 3, 2, act="lrelu"))
        self.emb_features = nn.Conv2d(4 * w, dim, 1, bias=False)       # as CNN_ENCODER's conv1x1
        side = image_size
        for _ in range(4):                     # the four stride-2 convs (kernel 3, padding 1)
            side = (side + 1) // 2
        cells = side * side if global_pool == "flatten" else 1
        self.emb_code = nn.Linear(8 * w * cells, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.coords:
            b, _, h, w = x.shape
            ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
            xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
            x = torch.cat([x, xs, ys], 1)
        h = self.local(x)
        deep = self.deep(h)
        code = deep.flatten(1) if self.global_pool == "flatten" else deep.mean((2, 3))
        return self.emb_features(h), self.emb_code(code)


class InceptionImageEncoder(nn.Module):
    def __init__(self, dim: int = 256, weights: str | None = None):
        super().__init__()
        from condsynth.nn.inception import FIDInceptionV3
        self.trunk = FIDInceptionV3(num_classes=None).requires_grad_(False)
        self.weights = weights
        self._loaded = False
        self.emb_features = nn.Conv2d(768, dim, 1, bias=False)
        self.emb_code = nn.Linear(2048, dim)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_code.weight, -0.1, 0.1)
        self._register_state_dict_hook(_drop_trunk)
        self.register_load_state_dict_post_hook(_ignore_trunk)

    def load_trunk(self) -> None:
        """Load the ImageNet Inception from the user's file (a MissingWeightsError says where to put it)."""
        from condsynth.nn.inception import load_fid_inception
        model, _ = load_fid_inception(self.weights)
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
        self.trunk.load_state_dict(state)
        self._loaded = True

    def train(self, mode: bool = True):
        super().train(mode)
        self.trunk.eval()                 # frozen, BN statistics fixed (AttnGAN: model.eval() on the trunk)
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._loaded:
            self.load_trunk()
        t = self.trunk
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        with torch.no_grad():
            x = t.Conv2d_2b_3x3(t.Conv2d_2a_3x3(t.Conv2d_1a_3x3(x)))
            x = F.max_pool2d(x, 3, 2)
            x = t.Conv2d_4a_3x3(t.Conv2d_3b_1x1(x))
            x = F.max_pool2d(x, 3, 2)
            for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                         "Mixed_6e"):
                x = getattr(t, name)(x)
            local = x                                                  # 768 x 17 x 17
            x = t.Mixed_7c(t.Mixed_7b(t.Mixed_7a(x)))
            pooled = x.mean((2, 3))                                    # 2048
        return self.emb_features(local), self.emb_code(pooled)


def _drop_trunk(module, state_dict, prefix, local_metadata):
    for k in [k for k in state_dict if k.startswith(prefix + "trunk.")]:
        del state_dict[k]


def _ignore_trunk(module, incompatible):
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if ".trunk." not in f".{k}"]


def build_image_encoder(kind: str, dim: int = 256, width: int = 32, weights: str | None = None,
                        global_pool: str = "mean", coords: bool = False, image_size: int = 64) -> nn.Module:
    from condsynth.errors import UserError
    if kind == "small_cnn":
        return SmallCNNEncoder(dim, width, global_pool, coords, image_size)
    if kind == "inception":
        return InceptionImageEncoder(dim, weights)
    raise UserError(f"unknown image_encoder '{kind}' (small_cnn, inception)")
