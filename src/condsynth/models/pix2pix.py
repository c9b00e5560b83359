"""pix2pix: image-to-image translation with a conditional GAN (Isola et al., CVPR 2017).

Source: the cGAN lecture (seed 003) and spec-translation §2.6.

Generator   G: U-Net with skips (condsynth.nn.unet), dropout as its only noise.
Discriminator D: conditional PatchGAN on x ⊕ y; 70x70 receptive field by default.

Objective (pix2pix Eq. 4):

    G* = arg min_G max_D  L_cGAN(G, D) + λ L_L1(G),       λ = 100

    L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_x[log(1 - D(x, G(x)))]          (Eq. 1)
    L_L1(G)      = E_{x,y}[ ||y - G(x)||_1 ]                                 (Eq. 3)

G minimises the non-saturating form -log D(x, G(x)); D's loss is halved "to slow down the rate
at which D learns relative to G" (§3.3). Adam, lr 2e-4, betas (0.5, 0.999), weights ~ N(0, 0.02).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from condsynth.config import bounded
from condsynth.data.translation import PairedDataConfig, paired_dataset
from condsynth.losses.gan import GANLoss
from condsynth.models.base import Method, StepContext
from condsynth.nn.blocks import init_weights, set_requires_grad
from condsynth.nn.discriminators import PatchDiscriminator
from condsynth.nn.unet import UNetGenerator


@dataclass
class Pix2PixConfig:
    in_channels: int = bounded(3, 1, 64)
    out_channels: int = bounded(3, 1, 64)
    ngf: int = bounded(64, 1, 4096)
    ndf: int = bounded(64, 1, 4096)
    num_downs: int = bounded(8, 2, 16)  # 8 for 256x256 (1x1 bottleneck); 6 for 64x64; stride 2^num_downs
    norm: Literal["batch", "instance", "none"] = "batch"
    dropout: float = bounded(0.5, 0.0, 1.0)
    dropout_blocks: tuple[int, ...] = (0, 1, 2)   # decoder blocks from the innermost; code uses (1, 2, 3)
    test_dropout: bool = True           # pix2pix keeps dropout on at test time (§3.2.1)
    d_layers: int = bounded(3, 0, 12)   # 3 = 70x70 PatchGAN; 0 pixel, 1 16x16, 5 286x286
    gan_mode: Literal["vanilla", "lsgan", "hinge", "wgan"] = "vanilla"
    lambda_l1: float = bounded(100.0, 0.0, None)   # λ of Eq. 4
    lambda_gan: float = bounded(1.0, 0.0, None)    # 0 trains the "L1 only" ablation of Table 1
    conditional_d: bool = True          # False: unconditional D (the "GAN" rows of Table 1)
    d_loss_scale: float = bounded(0.5, 0.0, None)  # D objective divided by 2 (§3.3)
    lr: float = bounded(2e-4, 0.0, 1e3)
    beta1: float = bounded(0.5, 0.0, 1.0)
    beta2: float = bounded(0.999, 0.0, 1.0)
    init_gain: float = bounded(0.02, 0.0, 1e3)


class Pix2Pix(Method):
    name = "pix2pix"
    ModelConfig = Pix2PixConfig
    DataConfig = PairedDataConfig
    ema_networks = ("G",)
    inference_networks = ("G",)
    pipeline = "condsynth.pipelines.translate:TranslationPipeline"

    def __init__(self, model_cfg: Pix2PixConfig, data_cfg: PairedDataConfig):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        self.G = init_weights(UNetGenerator(c.in_channels, c.out_channels, c.ngf, c.num_downs, c.norm,
                                            c.dropout, tuple(c.dropout_blocks)), gain=c.init_gain)

    def setup_training(self):
        c = self.model_cfg
        d_in = (c.in_channels if c.conditional_d else 0) + c.out_channels
        self.D = init_weights(PatchDiscriminator(d_in, c.ndf, c.d_layers, c.norm), gain=c.init_gain)
        self.gan_loss = GANLoss(c.gan_mode)

    # ------------------------------------------------------------------ engine contract
    def networks(self):
        return {"G": self.G, "D": self.D}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        return {"G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2)),
                "D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))}

    def build_dataset(self, split: str):
        return paired_dataset(self.data_cfg, split)

    def _d_input(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, y], 1) if self.model_cfg.conditional_d else y

    def training_step(self, batch, ctx: StepContext):
        c = self.model_cfg
        x, y = batch["A"], batch["B"]
        G, D = ctx.nets["G"], ctx.nets["D"]

        with ctx.autocast():
            fake = G(x)

        # --- D step: maximise Eq. 1, i.e. minimise BCE on real -> 1 and fake -> 0 (scaled by 1/2)
        with ctx.autocast():
            loss_d_real = self.gan_loss(D(self._d_input(x, y)), True)
            loss_d_fake = self.gan_loss(D(self._d_input(x, fake.detach())), False)
            loss_d = c.d_loss_scale * (loss_d_real + loss_d_fake)
        ctx.backward(loss_d)
        ctx.step("D")

        # --- G step: non-saturating adversarial term + λ·L1 (Eq. 4). D is frozen and used
        # unwrapped: its parameters receive no gradient, so no DDP synchronisation is needed.
        set_requires_grad(self.D, False)
        with ctx.autocast():
            loss_g_gan = self.gan_loss(self.D(self._d_input(x, fake)), True, for_discriminator=False)
            loss_g_l1 = F.l1_loss(fake, y)
            loss_g = c.lambda_gan * loss_g_gan + c.lambda_l1 * loss_g_l1
        ctx.backward(loss_g)
        ctx.step("G")
        set_requires_grad(self.D, True)

        return {"loss_D": loss_d.detach(), "loss_D_real": loss_d_real.detach(), "loss_D_fake": loss_d_fake.detach(),
                "loss_G_GAN": loss_g_gan.detach(), "loss_G_L1": loss_g_l1.detach()}

    # ------------------------------------------------------------------ inference and monitoring
    def prepare_for_inference(self) -> None:
        """BatchNorm uses running statistics; dropout stays on if the config says so (paper)."""
        self.G.eval()
        if self.model_cfg.test_dropout:
            for m in self.G.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.train()

    @torch.no_grad()
    def translate(self, x: torch.Tensor) -> torch.Tensor:
        return self.G(x)

    @torch.no_grad()
    def visuals(self, batch):
        return {"input": batch["A"], "output": self.G(batch["A"]), "target": batch["B"]}

    @torch.no_grad()
    def evaluate(self, batch):
        fake = self.G(batch["A"])
        return {"L1": F.l1_loss(fake, batch["B"]).item()}
