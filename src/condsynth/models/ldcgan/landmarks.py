"""G_L, LDcGAN's landmark predictor: the 68 points of a face -> its 68 points at a target age group
(thesis §4.3.1; spec-hfgan-ldcgan §4.2). Pre-trained here, then frozen under LDcGAN
(``model.landmark_predictor`` of :mod:`condsynth.models.ldcgan.ldcgan`).

The thesis: an encoder-decoder whose "final landmark prediction is achieved by fusing the age feature
vectors with the latent features of the source landmark", trained with

    L_lmk = ||E(L*) - E(L)||^2_2 + ||L* - L^GT||^2_2                                     (thesis §4.3.1)

The network is the spec's [R] reading: E = MLP 136 -> 256 -> 128 (ReLU); fuse = concatenate the 10-d
one-hot of the target group; decoder = MLP 138 -> 256 -> 136 predicting a residual, L* = L + Delta.

L^GT, the same person's landmarks at the target age, does not exist in unpaired data (spec gap A6).
Our assumption, not the thesis's (spec §4.2 [R]): a **prototype target**. Every training shape is
Procrustes-aligned (similarity) to the global mean, the per-group means mu_g are taken, and

    L^GT(L, s -> t) = L + (mu_t - mu_s)                     (so L^GT = L for t = s)

The shift is applied in the crop's frame (the faces are aligned crops, so the mean frame and the crop
frame agree up to a small similarity). ``group_means`` is a buffer of the network: the bench's
prototype baseline reads it from the same checkpoint. Landmarks are in [-1, 1] of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from condsynth.config import bounded
from condsynth.data.utkface import AGE_GROUPS, FaceDataConfig, FaceLandmarksDataset
from condsynth.io.faces import similarity_transform
from condsynth.models.base import Method, StepContext

N_GROUPS = len(AGE_GROUPS)


@dataclass
class LandmarkPredictorConfig:
    hidden: int = bounded(256, 1, 65536)       # E: 136 -> hidden -> latent; D: latent + 10 -> hidden -> 136
    latent: int = bounded(128, 1, 65536)
    lambda_latent: float = bounded(1.0, 0.0, None)   # weight of ||E(L*) - E(L)||^2 in L_lmk
    lambda_target: float = bounded(1.0, 0.0, None)   # weight of ||L* - L^GT||^2 in L_lmk
    lr: float = bounded(1e-3, 0.0, 1.0)         # spec §4.7 [R]: Adam 1e-3, ~100 epochs


class LandmarkPredictor(nn.Module):
    """G_L(L, t) = L + D(E(L) ⊕ onehot(t)); ``L``: ``B x 68 x 2``, ``t``: ``B`` group indices."""

    def __init__(self, hidden: int = 256, latent: int = 128, n_points: int = 68):
        super().__init__()
        n = n_points * 2
        self.n_points = n_points
        self.encoder = nn.Sequential(nn.Linear(n, hidden), nn.ReLU(True), nn.Linear(hidden, latent), nn.ReLU(True))
        self.decoder = nn.Sequential(nn.Linear(latent + N_GROUPS, hidden), nn.ReLU(True), nn.Linear(hidden, n))
        nn.init.zeros_(self.decoder[-1].weight)        # starts as the identity map L* = L
        nn.init.zeros_(self.decoder[-1].bias)
        # per-group mean shapes mu_g of the training set (Procrustes-aligned), for the prototype targets
        self.register_buffer("group_means", torch.zeros(N_GROUPS, n_points, 2))

    def encode(self, landmarks: torch.Tensor) -> torch.Tensor:
        return self.encoder(landmarks.flatten(1))

    def forward(self, landmarks: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(target.long(), N_GROUPS).to(landmarks.dtype)
        delta = self.decoder(torch.cat([self.encode(landmarks), onehot], 1))
        return landmarks + delta.view_as(landmarks)

    def prototype(self, landmarks: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The prototype target L^GT(L, s -> t) = L + (mu_t - mu_s) (spec §4.2 [R])."""
        return landmarks + (self.group_means[target.long()] - self.group_means[source.long()])


def group_mean_shapes(shapes: np.ndarray, groups: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Generalised Procrustes: align every ``68 x 2`` shape to the running global mean (similarity), then the mean
    of the aligned shapes per age group (``10 x 68 x 2``; a group without shapes gets the global mean)."""
    mean = shapes.mean(0)
    aligned = shapes
    for _ in range(iterations):
        aligned = np.stack([s @ m[:, :2].T + m[:, 2] for s, m in
                            ((s, similarity_transform(s, mean)) for s in shapes)])
        mean = aligned.mean(0)
    out = np.repeat(mean[None], N_GROUPS, 0)
    for g in range(N_GROUPS):
        if (groups == g).any():
            out[g] = aligned[groups == g].mean(0)
    return out


class LandmarkPredictorMethod(Method):
    """Pre-trains G_L on a face folder's landmark cache (``data.root/train_split/landmarks.npz``)."""

    name = "ldcgan_landmarks"
    ModelConfig = LandmarkPredictorConfig
    DataConfig = FaceDataConfig
    inference_networks = ("G_L",)
    pipeline = "condsynth.pipelines.face_aging:LandmarkPredictorPipeline"

    def __init__(self, model_cfg: LandmarkPredictorConfig, data_cfg: FaceDataConfig):
        super().__init__(model_cfg, data_cfg)
        self.G_L = LandmarkPredictor(model_cfg.hidden, model_cfg.latent)

    def setup_training(self) -> None:
        ds = self.build_dataset("train")
        shapes = np.stack([ds.normalised(i) for i in range(len(ds))])
        groups = np.array([r.group for r in ds.records])
        self.G_L.group_means.copy_(torch.from_numpy(group_mean_shapes(shapes, groups)).float())

    def networks(self):
        return {"G_L": self.G_L}

    def configure_optimizers(self, train_cfg):
        return {"G_L": torch.optim.Adam(self.G_L.parameters(), lr=self.model_cfg.lr)}

    def build_dataset(self, split: str):
        from pathlib import Path
        sub = self.data_cfg.train_split if split == "train" else self.data_cfg.eval_split
        return FaceLandmarksDataset(Path(self.data_cfg.root) / sub, flip=self.data_cfg.flip and split == "train")

    def loss(self, batch, net: nn.Module) -> dict[str, torch.Tensor]:
        c = self.model_cfg
        lm, s = batch["landmarks"], batch["group"]
        t = torch.randint(0, N_GROUPS, s.shape, device=lm.device)        # spec §4.7: t uniform, t = s allowed
        pred = net(lm, t)
        target = self.G_L.prototype(lm, s, t)
        latent = F.mse_loss(net.encode(pred), net.encode(lm).detach())   # ||E(L*) - E(L)||^2 (thesis §4.3.1)
        return {"loss_target": c.lambda_target * F.mse_loss(pred, target),   # ||L* - L^GT||^2
                "loss_latent": c.lambda_latent * latent}

    def training_step(self, batch, ctx: StepContext):
        losses = self.loss(batch, ctx.nets["G_L"])
        ctx.backward(sum(losses.values()))
        ctx.step("G_L")
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def predict(self, landmarks: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.G_L(landmarks, target)

    @torch.no_grad()
    def evaluate(self, batch):
        """Error of L* to the prototype target, over all ten targets of each held-out shape."""
        lm, s = batch["landmarks"], batch["group"]
        errs = []
        for t in range(N_GROUPS):
            tt = torch.full_like(s, t)
            errs.append((self.G_L(lm, tt) - self.G_L.prototype(lm, s, tt)).norm(dim=-1).mean())
        return {"prototype_error": float(torch.stack(errs).mean())}
