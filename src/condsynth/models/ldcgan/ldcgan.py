"""LDcGAN (LGcGAN): landmark-guided dual-learning conditional GAN for face aging (thesis ch. 4;
spec-hfgan-ldcgan §4 with its errata).

Given a face I of source age group A_s, its 68 landmarks L and a target group A_t, one generator G
makes the aged face and the same G takes it back (G_f = G_r, shared weights, thesis §4.3.1):

    L*  = G_L(L, A_t)                    the frozen, pre-trained landmark predictor (models/ldcgan/landmarks.py)
    I*  = G(I, A_t; L, L*)               aging (primal)
    I_r = G(I*, A_s; L*, L)              the dual pass: back to the source age; the "source" landmarks of I* are L*

G (thesis §4.4.1, spec §4.4 table; widths in N_i): the input I ⊕ tile(A_t) (3 + 10 channels); four
conv 3x3-BN-ReLU groups 2N_i, 4N_i, 8N_i, 16N_i at strides 1, 2, 2, 2 (the thesis says "stride 2" for
all four, which cannot give the 16N_i x 16 x 16 it states from 128^2: spec A1, stride 1 first); six
residual blocks; then the landmark attention features (Eq. 4.2-4.3, spec §4.3)

    f_attn1 = f_c(H_l^1(L*)) - f_c(H_l^1(L))                       N_L x 16 x 16, concatenated after the residual blocks
    f_attn2 = sigmoid(H_l^2(H_l^1(L*) ⊕ H_l^1(L)))                 8N_i x 32 x 32
    h_k     = h_i * f_attn2 + h_d * (1 - f_attn2)                  h_i: the encoder's 32^2 feature, h_d: the decoder's

with H_l^1 the landmark encoder ("a linear layer with ReLU activation and a Conv layer", one for L and
L*), f_c a 1x1 conv, H_l^2 a 4x4 stride-2 transposed conv. The bottleneck is Res ⊕ tile(A_t) ⊕ f_attn1;
three deconv 3x3-BN-ReLU groups 8N_i, 4N_i, 2N_i decode it to two heads, a content image f_C (tanh) and
an attention mask f_A (sigmoid), blended with the input by

    I* = (1 - f_A) * f_C + f_A * I                                                             (Eq. 4.4)

(f_A = 1 keeps the input pixel: the formula, not the prose, spec §4.4.)

D (thesis §4.4.1; nn.discriminators preset "ldcgan"): four 3x3 conv-BN-LReLU to 8N_d x 16 x 16, the
age one-hot tiled and concatenated there (the input of the fifth conv), an unconditional and a
conditional head, and the age classifier D_A as an auxiliary 10-way head on the same trunk (spec
§4.5, A7; the thesis calls D_A both "pre-trained", line 822, and "learned" by the real-image term of
Eq. 4.10, line 953: a head trained with D is the spec's choice).

Losses (Eq. 4.6-4.15, with the spec's corrections §4.6), per batch (I, s, L) with a target t and a
real image I^GT of group t:

    L_DG   = ½ BCE(D_u(I^GT),1) + ½ BCE(D_u(I*),0) + ½ BCE(D_c(I^GT,t),1) + ½ BCE(D_c(I*,t),0)        (Eq. 4.6)
    L_RDG  = the same with (I, s) real and (I_r, s) fake                                            (Eq. 4.8)
    L_D    = L_DG + L_RDG + CE(D_A(I), s)                                          (Eq. 4.15, Eq. 4.10 2nd term)
    L_G    = ½ BCE(D_u(I*),1) + ½ BCE(D_c(I*,t),1)                      (Eq. 4.7, non-saturating, spec §4.6.1)
    L_RG   = the same for (I_r, s)                                  (Eq. 4.9 with C_s, not C_t: spec A8)
    L_cls  = CE(D_A(I*), t)                                                         (Eq. 4.10, 1st term)
    L_Rcls = CE(D_A(I_r), s)                                 (Eq. 4.11 as corrected: I* is at age t, spec A8)
    L_id   = mean ||Phi(I) - Phi(I*)||^2                                                         (Eq. 4.12)
    L_cyc  = ||G(I*, s) - I||_1 + ||G(I_r, t) - sg(I*)||_1                                        (Eq. 4.13)
    L_G,total = λ1 L_G + λ2 L_RG + λ3 L_cls + λ4 L_Rcls + λ5 L_id + λ6 L_cyc (+ mask regulariser)  (Eq. 4.14)

Phi is "the features extracted by the conv5 layer in our generative network" (thesis line 968). The
seed wins over the spec's default (a frozen age classifier, IPCGAN-style): Phi = G's own encoder up to
its fifth conv (the four encoder groups and the first conv of the first residual block), with both
images conditioned on t, evaluated with G's weights detached so that L_id moves the image and cannot
be zeroed by collapsing the features (``model.phi: g_encoder``; ``none`` switches it off).

The mask regulariser λ_A mean(f_A) + λ_TV TV(f_A) is not in the thesis (GANimation's; spec §4.6.8):
without it f_A ≡ 1 (output = input) is a trivial solution for L_cyc and L_id. Our addition, on by default.

Switches for the ablations, which are ours (the thesis has no ablation table; errata §4.9):
``use_landmarks`` (off: f_attn1 = 0 and f_attn2 = 0, a plain encoder-decoder; G_L is not loaded),
``dual`` (off: no I_r, L_RDG, L_RG, L_Rcls, L_cyc), ``mask_reg`` (off: λ_A = λ_TV = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from condsynth.config import bounded
from condsynth.data.utkface import AGE_GROUPS, FaceDataConfig, UTKFaceDataset
from condsynth.errors import ConfigError
from condsynth.losses.gan import joint_d_loss, joint_g_loss
from condsynth.losses.reconstruction import TVLoss
from condsynth.models.base import FrozenRef, Method, StepContext
from condsynth.nn.blocks import ConvNormAct, LandmarkEncoder, init_weights, mask_blend, set_requires_grad
from condsynth.nn.discriminators import JointDiscriminator
from condsynth.nn.resnet_generator import ResBlock

N_GROUPS = len(AGE_GROUPS)


@dataclass
class LDcGANConfig:
    image_size: int = bounded(128, 16, 1024)       # 128 [S]; 64 for the faces world on a CPU
    n_i: int = bounded(16, 1, 256)                 # N_i: the bottleneck has 16 N_i channels [S]
    n_l: int = bounded(16, 1, 256)                 # N_L: landmark feature channels (= N_i in the thesis)
    res_blocks: int = bounded(6, 0, 32)            # 6 [S]
    ndf: int = bounded(64, 1, 1024)                # N_d: D's trunk ends at 8 N_d x 16 x 16 [S]
    age_at_input: bool = True                      # I ⊕ tile(A_t) [S] (spec A3: both injections, flags)
    age_at_bottleneck: bool = True                 # Res ⊕ tile(A_t) [S]
    use_landmarks: bool = True                     # the landmark path (ablation, ours)
    landmark_predictor: str = ""                   # run / checkpoint / export of `ldcgan_landmarks` (G_L, frozen)
    dual: bool = True                              # the dual pass and its losses (ablation, ours)
    # ours, not the thesis's: the dual pass joins at this global step, so the forward pass learns to age first
    dual_start_step: int = bounded(0, 0, None)
    cycle_second_term: bool = True                 # ||G(I_r, t) - I*||_1 in Eq. 4.13
    mask_reg: bool = True                          # λ_A mean(f_A) + λ_TV TV(f_A) (ours, GANimation; ablation)
    phi: Literal["g_encoder", "none"] = "g_encoder"    # Φ of Eq. 4.12: G's conv5 features (thesis line 968)
    lambda_adv: float = bounded(1.0, 0.0, None)        # λ1 (not given by the thesis: spec §4.6.7 [R])
    lambda_adv_dual: float = bounded(1.0, 0.0, None)   # λ2
    lambda_cls: float = bounded(1.0, 0.0, None)        # λ3
    lambda_cls_dual: float = bounded(1.0, 0.0, None)   # λ4
    lambda_id: float = bounded(1.0, 0.0, None)         # λ5
    lambda_cycle: float = bounded(10.0, 0.0, None)     # λ6 (CycleGAN / StarGAN)
    lambda_mask: float = bounded(0.1, 0.0, None)       # λ_A (GANimation code)
    lambda_tv: float = bounded(1e-5, 0.0, None)        # λ_TV, on the summed L1 total variation per image
    lr: float = bounded(2e-4, 0.0, 1.0)                # fixed 2e-4 [S]
    beta1: float = bounded(0.5, 0.0, 1.0)              # [R]
    beta2: float = bounded(0.999, 0.0, 1.0)
    init_gain: float = bounded(0.02, 0.0, 10.0)
    # D_A "pre-trained" (thesis line 822): the first steps train only D's age head (and trunk) on real images
    d_a_pretrain_steps: int = bounded(0, 0, None)

    def __post_init__(self):
        if self.image_size % 16:
            raise ValueError(f"image_size {self.image_size}: must be a multiple of 16 (three halvings in G, "
                             f"the 16x16 joint D trunk)")
        if self.use_landmarks and not self.landmark_predictor:
            raise ValueError("landmark_predictor: the pre-trained G_L (a run of method ldcgan_landmarks) is not set; "
                             "train it first, or set model.use_landmarks=false")


class AgingOutput(NamedTuple):
    image: torch.Tensor         # I*, B x 3 x H x W in [-1, 1]
    mask: torch.Tensor          # f_A, B x 1 x H x W in [0, 1] (1 keeps the input)
    content: torch.Tensor       # f_C, B x 3 x H x W in [-1, 1]


def age_map(onehot: torch.Tensor, size: int) -> torch.Tensor:
    """The 10-d one-hot age condition tiled to a 10-channel map (thesis §4.4.1)."""
    return onehot[:, :, None, None].expand(-1, -1, size, size)


class AgingGenerator(nn.Module):
    """G of Eq. 4.4: ``forward(x, target, landmarks, target_landmarks) -> AgingOutput`` (landmarks in [-1, 1])."""

    def __init__(self, cfg: LDcGANConfig):
        super().__init__()
        n, s = cfg.n_i, cfg.image_size
        self.cfg = cfg
        cin = 3 + (N_GROUPS if cfg.age_at_input else 0)
        self.encoder = nn.Sequential(                               # 4 groups of conv-BN-ReLU, 3x3 [S]
            ConvNormAct(cin, 2 * n, 3, 1), ConvNormAct(2 * n, 4 * n, 3, 2),       # stride 1 first: spec A1
            ConvNormAct(4 * n, 8 * n, 3, 2))                                      # -> h_i, 8N_i x S/4
        self.down = ConvNormAct(8 * n, 16 * n, 3, 2)                              # 16N_i x S/8 [S]
        self.res = nn.Sequential(*[ResBlock(16 * n, norm="batch", padding="zero") for _ in range(cfg.res_blocks)])
        bottleneck = 16 * n + (N_GROUPS if cfg.age_at_bottleneck else 0) + (cfg.n_l if cfg.use_landmarks else 0)
        if cfg.use_landmarks:
            self.landmark_encoder = LandmarkEncoder(68, cfg.n_l, s // 8)             # H_l^1 (Eq. 4.2)
            self.f_c = nn.Conv2d(cfg.n_l, cfg.n_l, 1)                                # f_c (spec A4: 1x1)
            self.gate = nn.ConvTranspose2d(2 * cfg.n_l, 8 * n, 4, 2, 1)              # H_l^2 (Eq. 4.3)
        self.up1 = ConvNormAct(bottleneck, 8 * n, 3, 2, 1, transposed=True)       # -> h_d, 8N_i x S/4
        self.up1[0].output_padding = (1, 1)
        self.up2 = ConvNormAct(8 * n, 4 * n, 3, 2, 1, transposed=True)
        self.up2[0].output_padding = (1, 1)
        self.up3 = ConvNormAct(4 * n, 2 * n, 3, 2, 1, transposed=True)
        self.up3[0].output_padding = (1, 1)
        self.to_content = nn.Conv2d(2 * n, 3, 7, 1, 3)                           # f_C, tanh
        self.to_mask = nn.Conv2d(2 * n, 1, 7, 1, 3)                              # f_A, sigmoid

    def _input(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, age_map(onehot, x.shape[-1]).to(x.dtype)], 1) if self.cfg.age_at_input else x

    def phi(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """Φ of Eq. 4.12: the output of G's fifth conv (four encoder groups, the first residual conv)."""
        h = self.down(self.encoder(self._input(x, onehot)))
        return self.res[0].body[0](h) if len(self.res) else h

    def attention(self, landmarks: torch.Tensor, target_landmarks: torch.Tensor):
        """(f_attn1, f_attn2) of Eq. 4.2-4.3."""
        h_src, h_tgt = self.landmark_encoder(landmarks), self.landmark_encoder(target_landmarks)
        f_attn1 = self.f_c(h_tgt) - self.f_c(h_src)
        f_attn2 = torch.sigmoid(self.gate(torch.cat([h_tgt, h_src], 1)))
        return f_attn1, f_attn2

    def forward(self, x: torch.Tensor, target: torch.Tensor, landmarks: torch.Tensor | None = None,
                target_landmarks: torch.Tensor | None = None) -> AgingOutput:
        onehot = F.one_hot(target.long(), N_GROUPS).to(x.dtype)
        h_i = self.encoder(self._input(x, onehot))
        h = self.res(self.down(h_i))
        parts = [h]
        if self.cfg.age_at_bottleneck:
            parts.append(age_map(onehot, h.shape[-1]).to(h.dtype))
        if self.cfg.use_landmarks:
            f_attn1, f_attn2 = self.attention(landmarks, target_landmarks)
            parts.append(f_attn1)
        h_d = self.up1(torch.cat(parts, 1))
        # h_k = h_i * f_attn2 + h_d * (1 - f_attn2) (§4.3.1); without landmarks f_attn2 = 0 (the decoder path alone)
        h_k = mask_blend(f_attn2, h_i, h_d, mask_selects="content") if self.cfg.use_landmarks else h_d
        y = self.up3(self.up2(h_k))
        content, mask = torch.tanh(self.to_content(y)), torch.sigmoid(self.to_mask(y))
        return AgingOutput(mask_blend(mask, content, x, mask_selects="base"), mask, content)      # Eq. 4.4


class LDcGAN(Method):
    name = "ldcgan"
    ModelConfig = LDcGANConfig
    DataConfig = FaceDataConfig
    inference_networks = ("G",)
    pipeline = "condsynth.pipelines.face_aging:FaceAgingPipeline"

    def __init__(self, model_cfg: LDcGANConfig, data_cfg: FaceDataConfig):
        super().__init__(model_cfg, data_cfg)
        if data_cfg.image_size != model_cfg.image_size:
            raise ConfigError(f"data.image_size {data_cfg.image_size} differs from model.image_size "
                              f"{model_cfg.image_size}")
        self.G = init_weights(AgingGenerator(model_cfg), gain=model_cfg.init_gain)
        self.G_L = None             # the frozen landmark predictor, attached by the engine or the pipeline
        # the face template the training crops are framed by (real photos are aligned to it); set by
        # setup_training, saved with G
        self.G.register_buffer("template", torch.zeros(68, 2))

    def frozen_networks(self):
        c = self.model_cfg
        if not c.use_landmarks:
            return {}
        from condsynth.models.ldcgan.landmarks import LandmarkPredictorMethod
        return {"G_L": FrozenRef(c.landmark_predictor, LandmarkPredictorMethod.name)}

    def setup_training(self):
        from condsynth.io.faces import default_template
        c = self.model_cfg
        self.G.template.copy_(torch.tensor(default_template().points, dtype=torch.float32))
        self.D = init_weights(JointDiscriminator.preset("ldcgan", image_size=c.image_size, ndf=c.ndf),
                              gain=c.init_gain)
        self.tv = TVLoss(power=1, reduction="sum")

    # ------------------------------------------------------------------ engine contract
    def networks(self):
        return {"G": self.G, "D": self.D}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        return {name: torch.optim.Adam(net.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
                for name, net in self.networks().items()}

    def build_dataset(self, split: str):
        cfg = self.data_cfg
        if not cfg.root:
            raise ConfigError("data.root: the face dataset folder is not set")
        sub = cfg.train_split if split == "train" else cfg.eval_split
        return UTKFaceDataset(Path(cfg.root) / sub, size=cfg.image_size, landmarks=True, target_group=True,
                              flip=cfg.flip and split == "train")

    def target_landmarks(self, landmarks: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """L* = G_L(L, t), or None without the landmark path."""
        if not self.model_cfg.use_landmarks:
            return None
        with torch.no_grad():
            return self.G_L(landmarks, target)

    def phi_loss(self, x: torch.Tensor, fake: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """L_id (Eq. 4.12) through G's own conv5 features with G's weights detached (the BN statistics
        are computed on a copy of the buffers, so they do not move the running averages)."""
        phi = _Phi(self.G)
        weights = {f"g.{k}": v.detach() for k, v in self.G.named_parameters()}
        weights.update({f"g.{k}": v.clone() for k, v in self.G.named_buffers()})
        return F.mse_loss(functional_call(phi, weights, (fake, onehot)),
                          functional_call(phi, weights, (x, onehot)).detach())

    def training_step(self, batch, ctx: StepContext):
        c = self.model_cfg
        G, D = ctx.nets["G"], ctx.nets["D"]
        x, s, lm = batch["image"], batch["group"].long(), batch["landmarks"]
        t, ref = batch["target"].long(), batch["reference"]
        onehot_t, onehot_s = F.one_hot(t, N_GROUPS).float(), F.one_hot(s, N_GROUPS).float()
        if ctx.global_step < c.d_a_pretrain_steps:
            return self.pretrain_age_classifier(batch, ctx)
        lm_t = self.target_landmarks(lm, t)                                       # L* = G_L(L, A_t)
        dual = c.dual and ctx.global_step >= c.dual_start_step

        with ctx.autocast():
            fake = G(x, t, lm, lm_t)                                              # I* = G_f(I, A_t)
            rec = G(fake.image, s, lm_t, lm) if dual else None                    # I_r = G_r(I*, A_s)

        # --- D step: L_D = L_DG + L_RDG + CE(D_A(I), s)                       (Eq. 4.15, 4.6, 4.8, 4.10)
        with ctx.autocast():
            real_t, fake_t = D(ref, onehot_t), D(fake.image.detach(), onehot_t)
            losses_d = {"D_G": joint_d_loss(real_t.uncond, fake_t.uncond, real_t.cond, fake_t.cond)}   # Eq. 4.6
            real_s = D(x, onehot_s)
            if dual:
                fake_s = D(rec.image.detach(), onehot_s)
                losses_d["RD_G"] = joint_d_loss(real_s.uncond, fake_s.uncond, real_s.cond, fake_s.cond)  # Eq. 4.8
            losses_d["D_A"] = F.cross_entropy(real_s.aux.float(), s)               # Eq. 4.10, real term
        ctx.backward(sum(losses_d.values()))
        ctx.step("D")

        # --- G step, D frozen
        set_requires_grad(self.D, False)
        with ctx.autocast():
            out_t = D(fake.image, onehot_t)
            g = {"G": c.lambda_adv * joint_g_loss(out_t.uncond, out_t.cond),                  # λ1 L_G, Eq. 4.7
                 "cls": c.lambda_cls * F.cross_entropy(out_t.aux.float(), t)}                 # λ3 L_cls, Eq. 4.10
            if c.phi == "g_encoder" and c.lambda_id > 0:
                g["id"] = c.lambda_id * self.phi_loss(x, fake.image, onehot_t)               # λ5 L_id, Eq. 4.12
            if dual:
                out_s = D(rec.image, onehot_s)
                g["RG"] = c.lambda_adv_dual * joint_g_loss(out_s.uncond, out_s.cond)         # λ2 L_RG, Eq. 4.9
                g["Rcls"] = c.lambda_cls_dual * F.cross_entropy(out_s.aux.float(), s)       # λ4 L_Rcls, Eq. 4.11
                cycle = F.l1_loss(rec.image, x)                                             # ||G_r(G_f(I)) - I||_1
                if c.cycle_second_term:
                    again = G(rec.image, t, lm, lm_t).image                                 # G_f(G_r(I*))
                    cycle = cycle + F.l1_loss(again, fake.image.detach())                   # ... - I*||_1
                g["cycle"] = c.lambda_cycle * cycle                                         # λ6 L_cyc, Eq. 4.13
            if c.mask_reg:
                masks = [fake.mask] + ([rec.mask] if dual else [])
                g["mask"] = sum(c.lambda_mask * m.mean() + c.lambda_tv * self.tv(m) / len(m) for m in masks)
        ctx.backward(sum(g.values()))
        ctx.step("G")
        set_requires_grad(self.D, True)

        logs = {f"loss_{k}": v.detach() for k, v in g.items()}
        logs.update({f"loss_{k}": v.detach() for k, v in losses_d.items()})
        logs["mask_mean"] = fake.mask.detach().mean()
        return logs

    def pretrain_age_classifier(self, batch, ctx: StepContext):
        """D_A alone on real images: the inputs with their groups and the references with theirs (Eq. 4.10's
        real term), before the GAN starts; G is not touched."""
        D = ctx.nets["D"]
        with ctx.autocast():
            x = torch.cat([batch["image"], batch["reference"]])
            y = torch.cat([batch["group"], batch["target"]]).long()
            loss = F.cross_entropy(D(x).aux.float(), y)
        ctx.backward(loss)
        ctx.step("D")
        return {"loss_D_A_pretrain": loss.detach()}

    # ------------------------------------------------------------------ inference and monitoring
    @torch.no_grad()
    def age(self, x: torch.Tensor, target: torch.Tensor, landmarks: torch.Tensor | None = None
            ) -> tuple[AgingOutput, torch.Tensor | None]:
        """Faces ``x`` (B x 3 x S x S in [-1, 1], aligned as the training crops) to the groups ``target``
        (B indices); ``landmarks`` B x 68 x 2 in [-1, 1] (needed with the landmark path). Returns the
        output and L*."""
        if self.model_cfg.use_landmarks and landmarks is None:
            raise ValueError("this LDcGAN uses the landmark path: pass the faces' 68 landmarks")
        lm_t = self.target_landmarks(landmarks, target) if landmarks is not None else None
        return self.G(x, target, landmarks, lm_t), lm_t

    @torch.no_grad()
    def visuals(self, batch):
        x, lm, t = batch["image"], batch["landmarks"], batch["target"].long()
        out, _ = self.age(x, t, lm)
        young, _ = self.age(x, torch.full_like(t, 1), lm)
        old, _ = self.age(x, torch.full_like(t, N_GROUPS - 2), lm)
        return {"input": x, "aged_to_target": out.image, "mask_f_A": out.mask.expand_as(x) * 2 - 1,
                "content_f_C": out.content, "to_6-10": young.image, "to_71-80": old.image}

    @torch.no_grad()
    def evaluate(self, batch):
        x, lm, s, t = batch["image"], batch["landmarks"], batch["group"].long(), batch["target"].long()
        out, lm_t = self.age(x, t, lm)
        rec = self.G(out.image, s, lm_t, lm)
        return {"cycle_L1": F.l1_loss(rec.image, x).item(), "change_L1": F.l1_loss(out.image, x).item(),
                "mask_mean": out.mask.mean().item()}


class _Phi(nn.Module):
    """G's Φ as a module, so that ``functional_call`` can run it with detached weights."""

    def __init__(self, g: AgingGenerator):
        super().__init__()
        self.g = g

    def forward(self, x, onehot):
        return self.g.phi(x, onehot)
