"""Lip readers: word classifiers on aligned face (or mouth) sequences, for AVWnet's reinterpretation.

AVWnet (thesis ch. 5, spec §2.6) reads its generated video back into words with the lip reader of
Stafylakis & Tzimiropoulos (STAF), pretrained on LRW crops "cropped in the same way" as the
generator's (T001 line 1289) and frozen inside the word loss L_w. Two readers are trained here:

* the **training reader** (``arch: staf``), the one L_w uses frozen: a 3-D spatio-temporal front-end
  ``Conv3d(1->w, k=(5,7,7), s=(1,2,2), p=(2,3,3))`` + BN + ReLU + ``MaxPool3d((1,3,3), (1,2,2), (0,1,1))``,
  a per-frame 2-D ResNet trunk (BasicBlocks ``blocks`` = [3, 4, 6, 3], widths w/2w/4w/8w, no stem:
  ResNet-34 at w = 64), global average pooling, ``Linear(8w -> feature_dim)`` + BN1d; a two-layer
  bidirectional LSTM (``hidden`` per direction); ``p_t = log_softmax(Linear(h_fwd ⊕ h_bwd))`` - a
  word distribution at each time step (spec §2.6).
* the **evaluation reader** (``arch: c3d``), another architecture and seed that never takes part in
  training a generator (plans/thesis-methods.md §3.3, check 1): four 3-D conv-BN-ReLU stages with
  spatial pooling, global spatial pooling, two temporal 1-D convolutions, the same per-step head.
  Word accuracy of generated video is read by this one; the training reader's accuracy on
  generated clips is optimised directly by L_w and is not evidence.

Loss: the mean over time steps of the per-step negative log-likelihood of the clip's word (STAF's
per-step supervision); the clip's prediction is the argmax of the mean per-step log-probability.
Input: grey frames ``B x 1 x T x H x W`` in STAF's normalisation (mean 0.4161, std 0.1688),
16-frame windows on the word centre (spec §2.6). Data: :class:`~condsynth.data.talking.LipDataConfig`
on a prepared LRW cache. Held-out ``eval/words/accuracy`` with its chance level and the confusion
matrix (:class:`WordAccuracy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric

from condsynth.config import bounded
from condsynth.data.talking import LipDataConfig, lip_dataset
from condsynth.errors import ConfigError
from condsynth.models.base import Method, StepContext
from condsynth.nn.resnet import BasicBlock


@dataclass
class LipReaderConfig:
    arch: Literal["staf", "c3d"] = "staf"
    n_words: int = bounded(500, 2, 100000)             # LRW: 500
    words: list[str] = field(default_factory=list)      # optional: the words, checked against the data
    width: int = bounded(64, 1, 1024)                   # front-end channels (STAF: 64)
    blocks: tuple[int, int, int, int] = bounded((3, 4, 6, 3), 0, 64)   # ResNet-34 (staf)
    feature_dim: int = bounded(256, 1, 8192)            # per-frame feature (STAF: FC 512 -> 256 + BN)
    hidden: int = bounded(256, 1, 8192)                 # BiLSTM hidden size per direction (staf)
    lstm_layers: int = bounded(2, 1, 8)
    optimizer: Literal["sgd", "adam"] = "sgd"           # STAF: SGD, momentum 0.9, weight decay 1e-4
    lr: float = bounded(3e-3, 0.0, 10.0)
    momentum: float = bounded(0.9, 0.0, 1.0)
    weight_decay: float = bounded(1e-4, 0.0, 1.0)


class STAFReader(nn.Module):
    """3-D front-end + per-frame ResNet + BiLSTM, a word distribution per time step (spec §2.6)."""

    def __init__(self, c: LipReaderConfig):
        super().__init__()
        w = c.width
        self.front = nn.Sequential(nn.Conv3d(1, w, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False), nn.BatchNorm3d(w),
                                   nn.ReLU(inplace=True), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        stages, ch = [], w
        for i, n in enumerate(c.blocks):
            out = w * 2 ** i
            for j in range(n):
                stages.append(BasicBlock(ch, out, 2 if (j == 0 and i > 0) else 1, norm=True))
                ch = out
        self.trunk = nn.Sequential(*stages)
        self.project = nn.Sequential(nn.Linear(ch, c.feature_dim), nn.BatchNorm1d(c.feature_dim))
        self.lstm = nn.LSTM(c.feature_dim, c.hidden, c.lstm_layers, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * c.hidden, c.n_words)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 1 x T x H x W`` -> per-step log-probabilities ``B x T x n_words``."""
        b, t = x.shape[0], x.shape[2]
        f = self.front(x)                                              # B x w x T x H/4 x W/4
        f = f.transpose(1, 2).reshape(b * t, *f.shape[1:2], *f.shape[3:])
        f = F.adaptive_avg_pool2d(self.trunk(f), 1).flatten(1)        # (B T) x 8w: any frame size
        f = self.project(f).reshape(b, t, -1)
        h, _ = self.lstm(f)                                            # forward ⊕ backward stacks
        return F.log_softmax(self.head(h), dim=-1)


class C3DReader(nn.Module):
    """The evaluation reader: 3-D conv stages, global spatial pooling, temporal 1-D convs."""

    def __init__(self, c: LipReaderConfig):
        super().__init__()
        w = c.width

        def stage(i, o, k, s, p):
            return [nn.Conv3d(i, o, k, s, p, bias=False), nn.BatchNorm3d(o), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*stage(1, w, (3, 5, 5), (1, 2, 2), (1, 2, 2)), nn.MaxPool3d((1, 2, 2)),
                                  *stage(w, 2 * w, 3, 1, 1), nn.MaxPool3d((1, 2, 2)),
                                  *stage(2 * w, 4 * w, 3, 1, 1), nn.MaxPool3d((1, 2, 2)),
                                  *stage(4 * w, 4 * w, 3, 1, 1))
        d = c.feature_dim
        self.temporal = nn.Sequential(nn.Conv1d(4 * w, d, 3, 1, 1, bias=False), nn.BatchNorm1d(d), nn.ReLU(True),
                                      nn.Conv1d(d, d, 3, 1, 1, bias=False), nn.BatchNorm1d(d), nn.ReLU(True))
        self.head = nn.Linear(d, c.n_words)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x).mean((3, 4))                                  # B x 4w x T
        return F.log_softmax(self.head(self.temporal(f).transpose(1, 2)), dim=-1)


ARCHS = {"staf": STAFReader, "c3d": C3DReader}


def word_log_probs(per_step: torch.Tensor) -> torch.Tensor:
    """A clip's word scores: the mean over time steps of the per-step log-probabilities."""
    return per_step.mean(1)


class WordAccuracy(Metric):
    """Top-1 word accuracy and the confusion matrix (rows: true word, columns: predicted)."""

    full_state_update = False

    def __init__(self, n_words: int, **kwargs):
        super().__init__(**kwargs)
        self.n_words = n_words
        self.add_state("confusion", torch.zeros(n_words, n_words, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        idx = labels.long() * self.n_words + scores.argmax(1).long()
        self.confusion += torch.bincount(idx.cpu(), minlength=self.n_words ** 2).reshape(
            self.n_words, self.n_words).to(self.confusion.device)

    def compute(self) -> dict:
        n = self.confusion.sum()
        return {"accuracy": self.confusion.diag().sum().double() / n.clamp_min(1),
                "chance": torch.tensor(1.0 / self.n_words, dtype=torch.float64), "n": n}


class LipReader(Method):
    name = "lipreader"
    ModelConfig = LipReaderConfig
    DataConfig = LipDataConfig
    inference_networks = ("net",)
    pipeline = "condsynth.pipelines.lipread:LipReadingPipeline"

    def __init__(self, model_cfg: LipReaderConfig, data_cfg: LipDataConfig):
        super().__init__(model_cfg, data_cfg)
        if model_cfg.words and len(model_cfg.words) != model_cfg.n_words:
            raise ConfigError(f"model.words has {len(model_cfg.words)} words but model.n_words is "
                              f"{model_cfg.n_words}")
        self.net = ARCHS[model_cfg.arch](model_cfg)

    def networks(self):
        return {"net": self.net}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        if c.optimizer == "adam":
            opt = torch.optim.Adam(self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        else:
            opt = torch.optim.SGD(self.net.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        return {"net": opt}

    def build_dataset(self, split: str):
        ds = lip_dataset(self.data_cfg, split)
        c = self.model_cfg
        if len(ds.words) != c.n_words or (c.words and list(c.words) != ds.words):
            raise ConfigError(f"{self.data_cfg.root}: the data has {len(ds.words)} words "
                              f"({', '.join(ds.words[:5])}{', ...' if len(ds.words) > 5 else ''}) but the model "
                              f"reads {c.n_words}" + (f" ({', '.join(c.words[:5])}, ...)" if c.words else ""))
        return ds

    def read(self, frames: torch.Tensor, net: nn.Module | None = None) -> torch.Tensor:
        """Per-step word log-probabilities ``B x T x n_words`` of normalised grey frames."""
        return (net or self.net)(frames)

    def training_step(self, batch, ctx: StepContext):
        with ctx.autocast():
            per_step = self.read(batch["frames"], ctx.nets["net"])
        t = per_step.shape[1]
        loss = F.nll_loss(per_step.reshape(-1, per_step.shape[-1]).float(), batch["label"].repeat_interleave(t))
        ctx.backward(loss)
        ctx.step("net")
        acc = (word_log_probs(per_step.detach()).argmax(1) == batch["label"]).float().mean()
        return {"loss_nll": loss.detach(), "train_accuracy": acc}

    def eval_metrics(self):
        return {"words": WordAccuracy(self.model_cfg.n_words)}

    @torch.no_grad()
    def eval_update(self, batch, metrics) -> None:
        metrics["words"].update(word_log_probs(self.read(batch["frames"])), batch["label"])

    @torch.no_grad()
    def visuals(self, batch):
        x = batch["frames"][:, :, batch["frames"].shape[2] // 2]       # the middle frame
        return {"middle_frame": (x * 0.1688 + 0.4161).clamp(0, 1).mul(2).sub(1).expand(-1, 3, -1, -1)}
