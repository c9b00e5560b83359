"""A small U-Net segmenter: photo -> per-pixel class logits, the evaluation network of label->photo methods.

The pix2pix, CycleGAN and pix2pixHD papers score a label->photo generator by running a
pretrained segmenter (FCN-8s, PSPNet) over its outputs and comparing the labels it finds with the
input label map (pixel accuracy, class accuracy, mIoU; :mod:`condsynth.metrics.segmentation`).
This method trains that segmenter on *real* renders of a world, here the scenes world, so
``condsynth eval segmentation`` can score generated photos; its own held-out scores on real
renders are the ceiling any generator can reach.

Network: the pix2pix U-Net (:class:`~condsynth.nn.unet.UNetGenerator`) with ``out_channels =
num_classes``, no dropout and no final tanh, so fully convolutional at any size divisible by its
stride ``2^num_downs``. Loss: per-pixel cross-entropy (optionally class-weighted), Adam.

Data: the paired reader (:class:`~condsynth.data.translation.PairedDataConfig`) with its ordinary
meaning of ``A`` (input) and ``B`` (target) *after* ``direction``. The scenes world written with
``condsynth data synth scenes --layout folders --class-ids`` stores labels in ``A/`` and photos in
``B/``, so the defaults here are ``direction: BtoA`` (the photo becomes the input) and
``label_b: true`` (the target, read from ``A/``, is class ids). ``extra_roots`` adds more datasets
to the training split only, e.g. a 2:1 one beside a square one; with ``preprocess: crop`` each
training sample is a random ``crop_size`` crop of either, so one network learns both 64x64 and
64x128 photos. Held-out evaluation uses ``root``'s eval split, whole images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from condsynth.config import bounded
from condsynth.data import split_key, transforms as T
from condsynth.data.translation import MAX_SIDE, PairedDataConfig, PairedImageDataset, Preprocess, paired_dataset
from condsynth.errors import UserError
from condsynth.io.images import default_palette
from condsynth.models.base import Method, StepContext
from condsynth.nn.blocks import init_weights
from condsynth.nn.unet import UNetGenerator


@dataclass
class SegmenterConfig:
    num_classes: int = bounded(11, 1, 1024)      # 11: the scenes world's classes
    class_names: tuple[str, ...] = ()            # names in the eval metrics (iou_<name>); () = the ids
    in_channels: int = bounded(3, 1, 64)
    ngf: int = bounded(16, 1, 4096)
    num_downs: int = bounded(4, 2, 16)           # stride 2^num_downs: 4 -> sides divisible by 16
    max_mult: int = bounded(8, 1, 64)
    norm: str = "batch"
    class_weights: tuple[float, ...] = ()        # per-class cross-entropy weights; () = unweighted (default)
    ignore_index: int = bounded(255, 0, 65535)   # target pixels not scored nor trained on (Cityscapes' void)
    lr: float = bounded(1e-3, 0.0, 1e3)
    beta1: float = bounded(0.9, 0.0, 1.0)
    beta2: float = bounded(0.999, 0.0, 1.0)
    init_gain: float = bounded(0.02, 0.0, 1e3)

    def __post_init__(self):
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for num_classes {self.num_classes}")
        if self.class_weights and len(self.class_weights) != self.num_classes:
            raise ValueError(f"class_weights has {len(self.class_weights)} values for num_classes {self.num_classes}")
        if any(w < 0 for w in self.class_weights):
            raise ValueError("class_weights must be non-negative")


@dataclass
class SegmenterDataConfig(PairedDataConfig):
    """Paired photo/label data; the defaults read the scenes world's ``--class-ids`` folders."""
    layout: Literal["auto", "ab", "folders"] = "folders"
    direction: Literal["AtoB", "BtoA"] = "BtoA"   # photos are in B/, class ids in A/: the input is the photo
    label_b: bool = True                 # the target (after direction) is a class-id map
    preprocess: Preprocess = "crop"      # random crop_size crops in training, whole images for eval
    load_size: int | tuple[int, int] = bounded(64, 1, MAX_SIDE)
    crop_size: int | tuple[int, int] = bounded(64, 1, MAX_SIDE)
    interp_a: T.Interp = "bilinear"      # the photo (input), when resized
    extra_roots: tuple[str, ...] = ()    # more dataset roots for the training split (e.g. a 2:1 one)


class ConcatPaired(Dataset):
    """Several paired datasets as one, keeping the engine's ``(index, seed)`` keys."""

    def __init__(self, parts: list[Dataset]):
        self.parts = parts
        self.starts = [0]
        for p in parts:
            self.starts.append(self.starts[-1] + len(p))

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, key):
        index, seed = split_key(key)
        for part, start, end in zip(self.parts, self.starts, self.starts[1:]):
            if index < end:
                local = index - start
                return part[(local, seed) if seed is not None else local]
        raise IndexError(index)


class Segmenter(Method):
    name = "segmenter"
    ModelConfig = SegmenterConfig
    DataConfig = SegmenterDataConfig
    inference_networks = ("net",)
    pipeline = "condsynth.pipelines.segment:SegmentationPipeline"

    def __init__(self, model_cfg: SegmenterConfig, data_cfg: SegmenterDataConfig):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        self.net = init_weights(UNetGenerator(c.in_channels, c.num_classes, c.ngf, c.num_downs, c.norm,
                                              dropout=0.0, max_mult=c.max_mult, tanh=False), gain=c.init_gain)
        weights = torch.tensor(c.class_weights, dtype=torch.float32) if c.class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)

    @property
    def stride(self) -> int:
        return self.net.stride

    # ------------------------------------------------------------------ engine contract
    def networks(self):
        return {"net": self.net}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        return {"net": torch.optim.Adam(self.net.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))}

    def build_dataset(self, split: str):
        d = self.data_cfg
        if split != "train" or not d.extra_roots:
            return paired_dataset(d, split)
        from dataclasses import replace
        parts = [PairedImageDataset(replace(d, root=r, extra_roots=()), d.train_split, train=True)
                 for r in (d.root, *d.extra_roots)]
        return ConcatPaired(parts)

    def _check_target(self, batch) -> torch.Tensor:
        y = batch["B"]
        c = self.model_cfg
        bad = (y >= c.num_classes) & (y != c.ignore_index)
        if bad.any():
            i = int(bad.flatten(1).any(1).nonzero()[0])
            raise UserError(f"label map '{batch['name'][i]}' holds class id {int(y[i][bad[i]].max())}, but "
                            f"model.num_classes is {c.num_classes} (ids 0..{c.num_classes - 1}, "
                            f"{c.ignore_index} = ignored)")
        return y

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, weight=self.class_weights, ignore_index=self.model_cfg.ignore_index)

    def training_step(self, batch, ctx: StepContext):
        y = self._check_target(batch)
        with ctx.autocast():
            logits = ctx.nets["net"](batch["A"])
        loss = self.loss(logits, y)
        ctx.backward(loss)
        ctx.step("net")
        return {"loss_ce": loss.detach()}

    # ------------------------------------------------------------------ evaluation and inference
    def eval_metrics(self):
        from condsynth.metrics.segmentation import SegmentationScores    # torchmetrics: only when evaluating
        c = self.model_cfg
        return {"seg": SegmentationScores(c.num_classes, c.ignore_index, c.class_names or None)}

    def eval_update(self, batch, metrics) -> None:
        metrics["seg"].update(self.segment(batch["A"]), batch["B"])

    @torch.no_grad()
    def evaluate(self, batch):
        return {"loss_ce": float(self.loss(self.net(batch["A"]), self._check_target(batch)))}

    @torch.no_grad()
    def segment(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``N x num_classes x H x W`` of photos ``N x C x H x W`` in [-1, 1] (sides
        divisible by :attr:`stride`; the pipeline pads)."""
        return self.net(x)

    def colorize(self, ids: torch.Tensor) -> torch.Tensor:
        """Class ids ``N x H x W`` as palette images in [-1, 1] (PASCAL VOC colours), for visuals."""
        pal = torch.from_numpy(default_palette(max(self.model_cfg.num_classes, 256))).to(ids.device)
        return pal[ids.clamp(0, 255).long()].permute(0, 3, 1, 2).float() / 127.5 - 1

    @torch.no_grad()
    def visuals(self, batch):
        pred = self.segment(batch["A"]).argmax(1)
        return {"input": batch["A"], "output": self.colorize(pred), "target": self.colorize(batch["B"])}
