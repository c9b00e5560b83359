"""CycleGAN: unpaired image-to-image translation with cycle-consistent adversarial networks
(Zhu et al., ICCV 2017).

Source: spec-translation §2.7 and its errata (the recipe is the paper's; the identity loss and the
image pool as in junyanz/pytorch-CycleGAN-and-pix2pix).

Two mappings between domains X = A and Y = B, each with its own ResNet generator
(condsynth.nn.resnet_generator: c7s1-64, d128, d256, 9 x R256 (6 at 128² and below), u128, u64,
c7s1-3, instance norm, reflection padding, tanh):

    G_A = G : X -> Y   (A to B)          G_B = F : Y -> X   (B to A)

and two 70x70 PatchGAN discriminators with instance norm, one per domain (paper naming):

    D_B = D_Y judges images of Y (real B against G_A's outputs)
    D_A = D_X judges images of X (real A against G_B's outputs)

(The reference code names them the other way round: its netD_A judges G_A's outputs, i.e. ours D_B.)

Objective (paper Eq. 3, with the least-squares GAN of §4 and the reference code's identity term):

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y) + L_GAN(F, D_X) + λ L_cyc(G, F) + λ_idt λ L_idt(G, F)

    L_GAN(G, D_Y) : D_Y minimises E_y[(D_Y(y) - 1)^2] + E_x[D_Y(G(x))^2]   (scaled by 1/2, §4)
                    G minimises E_x[(D_Y(G(x)) - 1)^2]                                     (LSGAN)
    L_cyc(G, F)   = E_x ||F(G(x)) - x||_1 + E_y ||G(F(y)) - y||_1                       (Eq. 2)
    L_idt(G, F)   = E_y ||G(y) - y||_1 + E_x ||F(x) - x||_1                            (§5.2)

λ = 10; λ_idt = 0.5 (the reference's --lambda_identity default, on; the paper uses it for
painting <-> photo). Each L1 is a mean over pixels, as in the reference. D sees its fakes through a
history of 50 generated images (:class:`condsynth.losses.gan.ImagePool`), saved in checkpoints.
Adam, lr 2e-4, betas (0.5, 0.999), weights ~ N(0, 0.02); constant LR then linear decay to 0 via
``train.schedule: {kind: linear, ...}`` (paper: 100 + 100 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from condsynth.config import bounded
from condsynth.data.translation import UnpairedDataConfig, UnpairedImageDataset
from condsynth.errors import UserError
from condsynth.losses.gan import GANLoss, ImagePool
from condsynth.models.base import Method, StepContext
from condsynth.nn.blocks import init_weights, set_requires_grad
from condsynth.nn.discriminators import PatchDiscriminator
from condsynth.nn.resnet_generator import ResnetGenerator
from condsynth.nn.tiled import run_network

Direction = Literal["AtoB", "BtoA"]
DIRECTIONS = ("AtoB", "BtoA")


@dataclass
class CycleGANConfig:
    in_channels: int = bounded(3, 1, 64)           # channels of domain A (G_A's input)
    out_channels: int = bounded(3, 1, 64)          # channels of domain B (G_A's output)
    ngf: int = bounded(64, 1, 4096)
    ndf: int = bounded(64, 1, 4096)
    n_blocks: int = bounded(9, 0, 64)              # 9 at 256², 6 at 128² and below
    n_down: int = bounded(2, 0, 8)                 # d128, d256: stride 4
    norm: Literal["instance", "batch", "none"] = "instance"
    padding: Literal["reflect", "zero", "replicate"] = "reflect"
    dropout: float = bounded(0.0, 0.0, 1.0)        # the reference's --use_dropout (off)
    d_layers: int = bounded(3, 0, 12)              # 3 = 70x70 PatchGAN
    gan_mode: Literal["lsgan", "vanilla", "hinge", "wgan"] = "lsgan"
    lambda_cycle: float = bounded(10.0, 0.0, None)     # λ of Eq. 3 (the reference's lambda_A = lambda_B)
    lambda_identity: float = bounded(0.5, 0.0, None)   # λ_idt, times λ; 0 switches the identity loss off
    d_loss_scale: float = bounded(0.5, 0.0, None)      # D objective divided by 2 (§4)
    pool_size: int = bounded(50, 0, 100000)            # image history per D; 0: D sees the newest fakes only
    lr: float = bounded(2e-4, 0.0, 1e3)
    beta1: float = bounded(0.5, 0.0, 1.0)
    beta2: float = bounded(0.999, 0.0, 1.0)
    init_gain: float = bounded(0.02, 0.0, 1e3)

    def __post_init__(self):
        if self.lambda_identity > 0 and self.in_channels != self.out_channels:
            raise ValueError(f"lambda_identity {self.lambda_identity} needs domains with the same channels "
                             f"(G_A(B) must be defined), got in_channels {self.in_channels} and out_channels "
                             f"{self.out_channels}: set model.lambda_identity=0")


def discriminator_loss(gan_loss: GANLoss, d_real: torch.Tensor, d_fake: torch.Tensor, scale: float) -> torch.Tensor:
    """scale · (L(D(real), real) + L(D(fake), fake)); LSGAN: ½ [E (D(y) - 1)² + E D(G(x))²]."""
    return scale * (gan_loss(d_real, True) + gan_loss(d_fake, False))


def generator_losses(gan_loss: GANLoss, cfg: CycleGANConfig, *, real_a, real_b, rec_a, rec_b, d_fake_a, d_fake_b,
                     idt_a=None, idt_b=None) -> dict[str, torch.Tensor]:
    """The generators' terms of Eq. 3, each already weighted, and their sum under ``"G"``.

    ``d_fake_b`` = D_B(G_A(a)), ``d_fake_a`` = D_A(G_B(b)); ``rec_a`` = G_B(G_A(a)), ``rec_b`` = G_A(G_B(b));
    ``idt_b`` = G_A(b), ``idt_a`` = G_B(a) (None when the identity loss is off)."""
    lam = cfg.lambda_cycle
    out = {"G_A_GAN": gan_loss(d_fake_b, True, for_discriminator=False),     # E (D_Y(G(x)) - 1)^2
           "G_B_GAN": gan_loss(d_fake_a, True, for_discriminator=False),     # E (D_X(F(y)) - 1)^2
           "cycle_A": lam * F.l1_loss(rec_a, real_a),                         # λ ||F(G(x)) - x||_1
           "cycle_B": lam * F.l1_loss(rec_b, real_b)}                         # λ ||G(F(y)) - y||_1
    if idt_a is not None:
        out["idt_A"] = cfg.lambda_identity * lam * F.l1_loss(idt_b, real_b)   # λ_idt λ ||G(y) - y||_1
        out["idt_B"] = cfg.lambda_identity * lam * F.l1_loss(idt_a, real_a)   # λ_idt λ ||F(x) - x||_1
    out["G"] = sum(out.values())
    return out


class CycleGAN(Method):
    name = "cyclegan"
    ModelConfig = CycleGANConfig
    DataConfig = UnpairedDataConfig
    ema_networks = ("G_A", "G_B")
    inference_networks = ("G_A", "G_B")
    export_parts = {"AtoB": ("G_A",), "BtoA": ("G_B",)}     # `condsynth export --part BtoA`: one generator
    pipeline = "condsynth.pipelines.translate:TranslationPipeline"

    def __init__(self, model_cfg: CycleGANConfig, data_cfg: UnpairedDataConfig):
        super().__init__(model_cfg, data_cfg)
        self.G_A = self._generator(model_cfg.in_channels, model_cfg.out_channels)    # G: A -> B
        self.G_B = self._generator(model_cfg.out_channels, model_cfg.in_channels)    # F: B -> A

    def _generator(self, cin: int, cout: int) -> ResnetGenerator:
        c = self.model_cfg
        return init_weights(ResnetGenerator(cin, cout, c.ngf, c.n_down, c.n_blocks, c.norm, c.padding,
                                            dropout=c.dropout), gain=c.init_gain)

    def setup_training(self):
        c = self.model_cfg
        self.D_A = init_weights(PatchDiscriminator(c.in_channels, c.ndf, c.d_layers, c.norm), gain=c.init_gain)
        self.D_B = init_weights(PatchDiscriminator(c.out_channels, c.ndf, c.d_layers, c.norm), gain=c.init_gain)
        self.gan_loss = GANLoss(c.gan_mode)
        self.pool_a = ImagePool(c.pool_size)     # G_B's outputs, shown to D_A
        self.pool_b = ImagePool(c.pool_size)     # G_A's outputs, shown to D_B

    # ------------------------------------------------------------------ engine contract
    def networks(self):
        return {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}

    def configure_optimizers(self, train_cfg):
        # One Adam per network; the reference's single Adam over chain(G_A, G_B) updates every
        # parameter identically (Adam is per parameter), except under train.grad_clip (per optimizer here).
        c = self.model_cfg
        return {name: torch.optim.Adam(net.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
                for name, net in self.networks().items()}

    def build_dataset(self, split: str):
        name = self.data_cfg.train_split if split == "train" else self.data_cfg.eval_split
        return UnpairedImageDataset(self.data_cfg, name, train=split == "train")

    def extra_state(self) -> dict:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])

    def training_step(self, batch, ctx: StepContext):
        c = self.model_cfg
        real_a, real_b = batch["A"], batch["B"]
        G_A, G_B, D_A, D_B = (ctx.nets[n] for n in ("G_A", "G_B", "D_A", "D_B"))
        identity = c.lambda_identity > 0

        # --- G step (the reference's order: generators first, with both D frozen and unwrapped)
        set_requires_grad(self.D_A, False)
        set_requires_grad(self.D_B, False)
        with ctx.autocast():
            fake_b = G_A(real_a)                 # G(x)
            rec_a = G_B(fake_b)                  # F(G(x))
            fake_a = G_B(real_b)                 # F(y)
            rec_b = G_A(fake_a)                  # G(F(y))
            g = generator_losses(self.gan_loss, c, real_a=real_a, real_b=real_b, rec_a=rec_a, rec_b=rec_b,
                                 d_fake_a=self.D_A(fake_a), d_fake_b=self.D_B(fake_b),
                                 idt_a=G_B(real_a) if identity else None, idt_b=G_A(real_b) if identity else None)
        ctx.backward(g["G"])
        ctx.step("G_A")
        ctx.step("G_B")
        set_requires_grad(self.D_A, True)
        set_requires_grad(self.D_B, True)

        # --- D step: each D against a fake drawn from its pool of past generator outputs
        with ctx.autocast():
            loss_d_b = discriminator_loss(self.gan_loss, D_B(real_b), D_B(self.pool_b.query(fake_b)), c.d_loss_scale)
            loss_d_a = discriminator_loss(self.gan_loss, D_A(real_a), D_A(self.pool_a.query(fake_a)), c.d_loss_scale)
        ctx.backward(loss_d_a + loss_d_b)
        ctx.step("D_A")
        ctx.step("D_B")

        logs = {f"loss_{k}": v.detach() for k, v in g.items()}
        logs.update(loss_D_A=loss_d_a.detach(), loss_D_B=loss_d_b.detach())
        return logs

    # ------------------------------------------------------------------ inference and monitoring
    def generator(self, direction: Direction = "AtoB") -> ResnetGenerator:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be AtoB or BtoA, got {direction!r}")
        net = self.G_A if direction == "AtoB" else self.G_B
        if net is None:
            other = "BtoA" if direction == "AtoB" else "AtoB"
            raise UserError(f"this CycleGAN export holds the {other} generator only (exported with --part {other}); "
                            f"--direction {direction} needs an export of both directions or the training run")
        return net

    def default_direction(self) -> Direction:
        """AtoB, unless this is an export of G_B alone (``export --part BtoA``)."""
        return "BtoA" if self.G_A is None else "AtoB"

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: Direction | None = None, tile: int | None = None) -> torch.Tensor:
        """A -> B with G_A (``AtoB``) or B -> A with G_B (``BtoA``); None: :meth:`default_direction`.
        ``tile``: layer by layer on tiles (condsynth.nn.tiled: the same output with less memory)."""
        return run_network(self.generator(direction or self.default_direction()), x, tile)

    @torch.no_grad()
    def visuals(self, batch):
        fake_b, fake_a = self.G_A(batch["A"]), self.G_B(batch["B"])
        return {"real_A": batch["A"], "fake_B": fake_b, "rec_A": self.G_B(fake_b),
                "real_B": batch["B"], "fake_A": fake_a, "rec_B": self.G_A(fake_a)}

    @torch.no_grad()
    def evaluate(self, batch):
        """Cycle L1 per direction, and L1 of each translation to the other side of the sample: meaningful
        when the eval split is paired by name (testA/x.png and testB/x.png counterparts, as in the worlds)."""
        fake_b, fake_a = self.G_A(batch["A"]), self.G_B(batch["B"])
        return {"cycle_L1_A": F.l1_loss(self.G_B(fake_b), batch["A"]).item(),
                "cycle_L1_B": F.l1_loss(self.G_A(fake_a), batch["B"]).item(),
                "L1_AtoB": F.l1_loss(fake_b, batch["B"]).item(), "L1_BtoA": F.l1_loss(fake_a, batch["A"]).item()}
