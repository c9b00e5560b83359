"""AT-net, the audio-to-landmark network AVWnet uses at test time (thesis: "pre-trained landmark prediction model
[11]"; spec §2.7 [I:ATVGnet]). Method ``avwnet_atnet``, trained on a prepared LRW cache, then frozen under AVWnet's
inference (``TalkingFacePipeline``) and the bench.

PCA (:class:`~condsynth.nn.landmark_pca.LandmarkPCA`, fitted on the training frames at ``setup_training``): landmarks
x 5, mean removed, the top 6 components. Input: the example landmark's coefficients and the frames' MFCC windows;
output: each frame's coefficients. Loss: MSE in PCA space; Adam 2e-4, beta (0.5, 0.999) (spec §2.7).
Inference back-projects, with ATVGnet's coefficient amplification as an option (``amplify``, default off).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.config import bounded
from condsynth.data.talking import TalkingDataConfig, talking_dataset
from condsynth.models.avwnet.nets import ATNet
from condsynth.models.base import Method, StepContext
from condsynth.nn.landmark_pca import LandmarkPCA


@dataclass
class ATNetConfig:
    k: int = bounded(6, 1, 136)                                  # PCA-6 [I:ATVGnet]
    audio_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 256, 512])
    audio_fc: int = bounded(2048, 1, 65536)
    audio_out: int = bounded(256, 1, 65536)
    lm_hidden: int = bounded(256, 1, 65536)
    lm_out: int = bounded(512, 1, 65536)
    hidden: int = bounded(256, 1, 65536)                         # 3-layer LSTM, 256
    layers: int = bounded(3, 1, 16)
    lr: float = bounded(2e-4, 0.0, 1.0)
    beta1: float = bounded(0.5, 0.0, 1.0)
    beta2: float = bounded(0.999, 0.0, 1.0)
    mfcc_norm: bool = True                                       # per-coefficient train statistics (spec §2.2 [R])


class ATNetMethod(Method):
    name = "avwnet_atnet"
    ModelConfig = ATNetConfig
    DataConfig = TalkingDataConfig
    inference_networks = ("atnet",)
    pipeline = "condsynth.pipelines.talking_face:AudioLandmarkPipeline"

    def __init__(self, model_cfg: ATNetConfig, data_cfg: TalkingDataConfig):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        self.atnet = ATNet(c.k, tuple(c.audio_channels), c.audio_fc, c.audio_out, c.lm_hidden, c.lm_out, c.hidden,
                           c.layers)
        self.atnet.pca = LandmarkPCA(c.k)

    def setup_training(self):
        ds = self.build_dataset("train")
        fitted = LandmarkPCA.fit(ds.all_landmarks(), self.model_cfg.k)
        self.atnet.pca.load_state_dict(fitted.state_dict())
        if self.model_cfg.mfcc_norm:
            m = ds.all_mfcc().reshape(-1, 12)
            self.atnet.mfcc_mean.copy_(torch.from_numpy(m.mean(0)))
            self.atnet.mfcc_std.copy_(torch.from_numpy(np.maximum(m.std(0), 1e-3)))

    def networks(self):
        return {"atnet": self.atnet}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        return {"atnet": torch.optim.Adam(self.atnet.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))}

    def build_dataset(self, split: str):
        return talking_dataset(self.data_cfg, split)

    def training_step(self, batch, ctx: StepContext):
        pca = self.atnet.pca
        with ctx.autocast():
            pred, _ = ctx.nets["atnet"](pca.project(batch["example_landmarks"]), batch["mfcc"])
        loss = F.mse_loss(pred.float(), pca.project(batch["landmarks"]))            # MSE in PCA space
        ctx.backward(loss)
        ctx.step("atnet")
        return {"loss_pca": loss.detach()}

    @torch.no_grad()
    def predict(self, example_landmarks: torch.Tensor, mfcc: torch.Tensor, state=None, amplify=None):
        """Landmarks ``B x T x 68 x 2`` (normalised) for the windows ``mfcc`` of a face with ``example_landmarks``."""
        pca = self.atnet.pca
        coeffs, state = self.atnet(pca.project(example_landmarks), mfcc, state)
        return pca.reconstruct(coeffs, amplify), state

    @torch.no_grad()
    def evaluate(self, batch):
        """Mean point error (in normalised units) of the predicted landmarks against the truth, and of the
        example landmark held still (the static baseline)."""
        pred, _ = self.predict(batch["example_landmarks"], batch["mfcc"])
        lm = batch["landmarks"]
        static = batch["example_landmarks"][:, None].expand_as(lm)
        mouth = slice(48, 68)
        return {"point_error": float((pred - lm).norm(dim=-1).mean()),
                "mouth_error": float((pred - lm)[..., mouth, :].norm(dim=-1).mean()),
                "static_mouth_error": float((static - lm)[..., mouth, :].norm(dim=-1).mean())}
