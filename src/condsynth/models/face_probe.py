"""Face evaluators trained on real renders of the faces world (never on generated images).

One method, three tasks (``model.task``), one trunk: the toolkit's age estimator
(:class:`~condsynth.metrics.age.AgeRegressor`, five stride-2 conv-BN-ReLU stages and global
average pooling) with a task head:

* ``age``: the age estimator itself (L1 in years, as :func:`~condsynth.metrics.age.train_age_regressor`);
  held-out ``mae``. Its export converts to the ``eval age --estimator`` file with
  :func:`~condsynth.metrics.age.save_age_regressor`.
* ``landmarks``: 68 (x, y) points in [-1, 1] of the image (L1); held-out ``nme``, the mean point
  error over the outer-eye-corner distance (300-W's inter-ocular normalisation).
* ``identity``: an L2-normalised ``embedding_dim`` embedding trained contrastively on pairs of two
  ages of one identity (symmetric InfoNCE over the batch, temperature ``temperature``); held-out
  verification over every pair of the eval split's images (identities disjoint from training):
  ``tar`` at ``far``, ``eer``. This is the world's identity probe (plans/thesis-methods.md §3.2,
  check 3); dlib's descriptor is not an identity measure on synthetic faces.

Data: :class:`~condsynth.data.utkface.FaceDataConfig` (the world's train/ and test/; identities
need ``--ages-per-identity 2`` or more; ``data.pairs`` and ``data.landmarks`` are set from the task).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.config import bounded
from condsynth.data.utkface import FaceDataConfig, face_dataset
from condsynth.metrics.age import AgeRegressor
from condsynth.models.base import Method, StepContext

TASKS = ("age", "landmarks", "identity")


@dataclass
class FaceProbeConfig:
    task: Literal["age", "landmarks", "identity"] = "age"
    width: int = bounded(32, 1, 1024)              # AgeRegressor width (channels of the first stage)
    embedding_dim: int = bounded(128, 2, 4096)     # identity
    temperature: float = bounded(0.1, 1e-3, 10.0)  # identity: InfoNCE temperature
    far: float = bounded(1e-2, 0.0, 1.0)           # identity: the false-accept rate of the held-out TAR
    lr: float = bounded(1e-3, 0.0, 1.0)
    weight_decay: float = bounded(0.0, 0.0, 1.0)


class FaceProbeNet(AgeRegressor):
    """The age estimator's trunk with a head of ``out_dim`` outputs (no age scaling)."""

    def __init__(self, width: int, out_dim: int):
        super().__init__(width)
        self.head = nn.Linear(self.head.in_features, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def nme(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-face mean point error over the outer-eye-corner distance (points 36, 45); ``N x 68 x 2``."""
    iod = (target[:, 36] - target[:, 45]).norm(dim=-1).clamp_min(1e-6)
    return (pred - target).norm(dim=-1).mean(1) / iod


class FaceProbe(Method):
    name = "face_probe"
    ModelConfig = FaceProbeConfig
    DataConfig = FaceDataConfig
    inference_networks = ("net",)
    pipeline = "condsynth.pipelines.face_probe:FaceProbePipeline"

    def __init__(self, model_cfg: FaceProbeConfig, data_cfg: FaceDataConfig):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        if c.task == "age":
            self.net = AgeRegressor(c.width)
        else:
            self.net = FaceProbeNet(c.width, 136 if c.task == "landmarks" else c.embedding_dim)

    def networks(self):
        return {"net": self.net}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        return {"net": torch.optim.Adam(self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)}

    def build_dataset(self, split: str):
        task = self.model_cfg.task
        cfg = replace(self.data_cfg, landmarks=self.data_cfg.landmarks or task == "landmarks",
                      pairs=task == "identity")
        return face_dataset(cfg, split)

    # ------------------------------------------------------------------ the three tasks
    def predict(self, x: torch.Tensor, net: nn.Module | None = None) -> torch.Tensor:
        """Ages ``(N,)``, landmarks ``N x 68 x 2`` in [-1, 1], or unit embeddings ``N x D``."""
        out = (net or self.net)(x)
        task = self.model_cfg.task
        if task == "landmarks":
            return out.reshape(-1, 68, 2)
        if task == "identity":
            return F.normalize(out, dim=1)
        return out

    def loss(self, batch, net: nn.Module | None = None) -> dict[str, torch.Tensor]:
        task = self.model_cfg.task
        if task == "age":
            pred = self.predict(batch["image"], net)
            return {"loss_l1_years": F.l1_loss(pred, batch["age"].float())}
        if task == "landmarks":
            pred = self.predict(batch["image"], net)
            return {"loss_l1": F.l1_loss(pred, batch["landmarks"])}
        x = torch.cat([batch["image"], batch["image2"]])
        e = self.predict(x, net)
        a, b = e.chunk(2)
        logits = a @ b.T / self.model_cfg.temperature
        # two images of one identity in a batch of distinct identities (IdentityPairs): the diagonal
        same = batch["identity"][:, None] == batch["identity"][None, :]
        logits = logits.masked_fill(same & ~torch.eye(len(a), dtype=torch.bool, device=a.device), -1e4)
        target = torch.arange(len(a), device=a.device)
        return {"loss_nce": (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2}

    def training_step(self, batch, ctx: StepContext):
        with ctx.autocast():
            losses = self.loss(batch, ctx.nets["net"])
        total = sum(losses.values())
        ctx.backward(total)
        ctx.step("net")
        return {k: v.detach() for k, v in losses.items()}

    # ------------------------------------------------------------------ held-out evaluation
    def eval_metrics(self):
        task = self.model_cfg.task
        if task == "identity":
            from condsynth.metrics.verification import EmbeddingVerification
            return {"verify": EmbeddingVerification(far=self.model_cfg.far)}
        from condsynth.metrics.base import MeanStdMetric

        class Errors(MeanStdMetric):
            def scores(self, values):
                return values
        return {"mae" if task == "age" else "nme": Errors()}

    @torch.no_grad()
    def eval_update(self, batch, metrics) -> None:
        task = self.model_cfg.task
        pred = self.predict(batch["image"])
        if task == "identity":
            metrics["verify"].update(pred, batch["identity"])
        elif task == "age":
            metrics["mae"].update((pred - batch["age"].float()).abs())
        else:
            metrics["nme"].update(nme(pred, batch["landmarks"]))

    @torch.no_grad()
    def visuals(self, batch):
        return {"input": batch["image"]}
