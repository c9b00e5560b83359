"""Does a generated image follow its caption? An attribute probe for the shapes world (plans/thesis-methods.md §3.1,
check 2), the text-to-image counterpart of the face probes.

- :func:`mentioned_attributes` reads what a caption says (shape, colour, size, position, count, texture) with the
  world's own word lists; a caption leaves the other attributes free, so only the mentioned ones are scored.
- :class:`ShapesProbe`, a small CNN with one head per attribute, trained on *real* world images
  (:func:`train_probe`); its held-out accuracy is reported beside every use.
- :func:`caption_agreement`: per attribute, the share of images whose probed value equals the caption's.
- :func:`world_inception_score`: Eq. 2.12 with the probe's (shape, colour) posterior in place of Inception's
  ImageNet posterior (no IS logits exist offline): high when images are recognisable and the classes varied.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from condsynth.data.synth.shapes import COLOURS, POSITIONS, SHAPES, SIZES, TEXTURES
from condsynth.data.text import tokenize

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES, "colour": tuple(COLOURS), "size": SIZES,
    "position": POSITIONS + ("side by side", "one above the other"), "count": ("1", "2"), "texture": TEXTURES}

_WORDS = {
    "shape": {"circle": "circle", "circles": "circle", "disc": "circle", "discs": "circle", "round": "circle",
              "square": "square", "squares": "square", "box": "square", "boxes": "square",
              "triangle": "triangle", "triangles": "triangle", "star": "star", "stars": "star",
              "diamond": "diamond", "diamonds": "diamond", "rhombus": "diamond", "rhombuses": "diamond"},
    "colour": {**{c: c for c in COLOURS}, "violet": "purple"},
    "size": {"small": "small", "little": "small", "tiny": "small", "large": "large", "big": "large",
             "huge": "large"},
    "texture": {"plain": "plain", "solid": "plain", "single": "plain", "striped": "striped", "stripes": "striped",
                "dotted": "dotted", "spotted": "dotted", "dots": "dotted"},
    "position": {"left": "left", "right": "right", "top": "top", "upper": "top", "bottom": "bottom",
                 "lower": "bottom", "middle": "centre", "centre": "centre", "center": "centre",
                 "side": "side by side", "next": "side by side", "above": "one above the other",
                 "stacked": "one above the other"},
}


def mentioned_attributes(caption: str) -> dict[str, str]:
    """The attributes a shapes-world caption states, e.g. ``{"shape": "circle", "colour": "red", "count": "1"}``.
    The background's words (light grey, grey, beige, dark) are not object colours, so they are not read."""
    tokens = tokenize(caption)
    out: dict[str, str] = {"count": "2" if "two" in tokens else "1"}
    for attr, table in _WORDS.items():
        for tok in tokens:
            if tok in table:
                out[attr] = table[tok]
                break
    return out


class ShapesProbe(nn.Module):
    """Four 3x3 stride-2 conv-BN-ReLU layers (3 -> 32 -> 64 -> 128 -> 128) to a 4 x 4 map at 64², flattened (so that
    position survives) into one linear head per attribute. Input: images in [-1, 1], resized to ``size``."""

    def __init__(self, size: int = 64, width: int = 32):
        super().__init__()
        w, layers, ch = width, [], 3
        for out_ch in (w, 2 * w, 4 * w, 4 * w):
            layers += [nn.Conv2d(ch, out_ch, 3, 2, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(True)]
            ch = out_ch
        self.size = size
        self.trunk = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.2))
        feat = ch * (size // 16) ** 2
        self.heads = nn.ModuleDict({a: nn.Linear(feat, len(v)) for a, v in ATTRIBUTES.items()})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.shape[-1] != self.size:
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear", antialias=True)
        h = self.trunk(images)
        return {a: head(h) for a, head in self.heads.items()}


def load_split(root: str | Path, split: str) -> tuple[torch.Tensor, list[dict], list[str]]:
    """Images (``N x 3 x S x S`` in [-1, 1]), their attributes (as probe labels) and keys of one world split."""
    root = Path(root)
    keys = json.loads((root / split / "filenames.json").read_text())
    attrs = json.loads((root / "attributes.json").read_text())
    images = np.stack([np.asarray(Image.open(root / "CUB_200_2011" / "images" / f"{k}.jpg").convert("RGB"))
                       for k in keys])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    labels = [{a: str(attrs[k][a]) for a in ATTRIBUTES} for k in keys]
    return x, labels, keys


def label_tensor(labels: list[dict]) -> dict[str, torch.Tensor]:
    return {a: torch.tensor([ATTRIBUTES[a].index(lab[a]) for lab in labels]) for a in ATTRIBUTES}


def train_probe(root: str | Path, steps: int = 800, batch_size: int = 64, seed: int = 0,
                lr: float = 1e-3) -> tuple[ShapesProbe, dict]:
    """A probe trained on the world's real ``train`` images (small shifts and colour jitter as augmentation, so it
    is not thrown by a generator's slight colour casts); returns it in eval mode with its accuracy per attribute on
    the ``test`` and ``compositional`` splits."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x, labels, _ = load_split(root, "train")
        y = label_tensor(labels)
        probe = ShapesProbe(size=x.shape[-1])
        opt = torch.optim.Adam(probe.parameters(), lr=lr)
        probe.train()
        for _ in range(steps):
            idx = torch.randint(len(x), (batch_size,), generator=gen)
            xb = x[idx]
            shift = torch.randint(-2, 3, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=shift, dims=(2, 3))
            xb = (xb * (1 + 0.1 * (torch.rand(batch_size, 3, 1, 1, generator=gen) - 0.5))).clamp(-1, 1)
            out = probe(xb)
            loss = sum(F.cross_entropy(out[a], y[a][idx]) for a in ATTRIBUTES)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    probe.eval()
    report = {}
    for split in ("test", "compositional"):
        xs, ls, _ = load_split(root, split)
        report[split] = attribute_accuracy(probe, xs, ls)
    return probe, report


@torch.no_grad()
def predict(probe: ShapesProbe, images: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Posteriors per attribute, ``N x |values|``."""
    outs = [probe(images[i:i + batch_size].float()) for i in range(0, len(images), batch_size)]
    return {a: torch.cat([o[a] for o in outs]).softmax(1) for a in ATTRIBUTES}


def attribute_accuracy(probe: ShapesProbe, images: torch.Tensor, labels: list[dict]) -> dict[str, float]:
    """Accuracy per attribute against full labels (the probe's own held-out accuracy)."""
    post = predict(probe, images)
    y = label_tensor(labels)
    return {a: round(float((post[a].argmax(1) == y[a]).float().mean()), 4) for a in ATTRIBUTES}


def caption_agreement(probe: ShapesProbe, images: torch.Tensor, captions: list[str]) -> dict[str, dict]:
    """Per attribute: the share of images (generated for ``captions``, in order) whose probed value is the one the
    caption states, over the captions that state it; with the count ``n`` and chance ``1 / |values|``."""
    post = predict(probe, images)
    said = [mentioned_attributes(c) for c in captions]
    out = {}
    for a, values in ATTRIBUTES.items():
        rows = [(i, values.index(s[a])) for i, s in enumerate(said) if a in s]
        if not rows:
            continue
        idx = torch.tensor([r[0] for r in rows])
        want = torch.tensor([r[1] for r in rows])
        acc = float((post[a][idx].argmax(1) == want).float().mean())
        out[a] = {"accuracy": round(acc, 4), "n": len(rows), "chance": round(1 / len(values), 4)}
    return out


def world_inception_score(probe: ShapesProbe, images: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) (Eq. 2.12) with y = (shape, colour), p(y|x) the product of the probe's shape and
    colour posteriors; mean and std over ``splits``. Its maximum is the 40 classes' count."""
    post = predict(probe, images)
    joint = (post["shape"][:, :, None] * post["colour"][:, None, :]).flatten(1).double().clamp_min(1e-12)
    scores = []
    for part in torch.chunk(joint, splits):
        marginal = part.mean(0, keepdim=True)
        kl = (part * (part.log() - marginal.log())).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))
