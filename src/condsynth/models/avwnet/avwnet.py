"""AVWnet: audio -> video -> words, fine-grained talking faces with video reinterpretation (thesis ch. 5;
spec-avwnet-painting §2 with the errata). Networks in :mod:`condsynth.models.avwnet.nets`.

One training step on a batch of T-frame windows (example I*, frames I_1..T, landmarks, MFCC windows A_j, the
mismatched windows A_{j+offset}, the word C_target), G trained with ground-truth landmarks (spec §2.9):

    D step, per stage s in {0, 1}, on single frames (spec §2.5, §2.8):
      L_Ds = -½ log D_s(I) - ½ log(1 - D_s(Ĩ)) - ⅓ log D_s(I, A_j) - ⅓ log(1 - D_s(Ĩ, A_j))
             - ⅓ log(1 - D_s(I, A_{j+1}))                                                        (Eq. 5.8)
      L_D  = Σ_s [L_Ds + λ L_Rs]  with L_R on real and fake frames [I:ATVGnet]                      (Eq. 5.9)
    G step:
      L_Gs = -½ log D_s(Ĩ) - ½ log D_s(Ĩ, A_j)  (non-saturating)                                  (Eq. 5.10)
      L_w  = -Σ_k p_k[C_target]  through the frozen training lip reader, stage 1 only               (Eq. 5.11)
      L_pix = mean |Ĩ - I| ⊙ M_mouth  (box around GT points 48-67, dilated 8 px at 128^2)          (Sec. 5.3.3)
      L = Σ_s (L_Gs + λ_R L_Rs^fake) + ∂ L_w + β Σ_s L_pix,s (+ full_l1_w Σ_s dynamic full-frame L1)  (Eq. 5.12)

L_R (ATVGnet): MSE of D's landmark regression against the frame's ground truth, weight ``mouth_y_weight`` (100) on
the mouth points' y (136-vector indices 97, 99, ..., 135) and 1 elsewhere. Weights (spec §2.8 [R]; the thesis gives
none): β = 10, ∂ = 1/T, λ = λ_R = 1; the full-frame dynamic L1 mean(|Ĩ - I| ⊙ (f_gray.detach() + 0.5)) [R,
I:ATVGnet] with weight 1 (without it identity and background drift).

Table 5.2 switches: ``use_attention`` (AM_0, AM_1), ``use_adversarial`` (L_D0, L_D1: no D at all), ``use_regression``
(L_R), ``use_word_loss`` (RIM). ``mismatch_offset`` is the data's (spec §2.8 [R]).

The word loss reads the generated 128^2 frames the way the reader was trained (its data config: the mouth box or
the whole crop, resized to its side, BT.601 luma, STAF's normalisation), differentiably; the reader stays in eval
mode (BN frozen), its weights frozen (spec §2.6 [R]).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.config import bounded
from condsynth.data.talking import TalkingDataConfig, talking_dataset
from condsynth.errors import ConfigError
from condsynth.losses.gan import joint_d_loss, joint_g_loss
from condsynth.models.avwnet.nets import LANDMARK_MOTIONS, AVDiscriminator, AVWnetGenerator, TalkingOutput
from condsynth.models.base import FrozenRef, Method, StepContext
from condsynth.nn.blocks import init_weights, set_requires_grad

STAF_MEAN, STAF_STD = 0.4161, 0.1688
MOUTH = slice(48, 68)


@dataclass
class AVWnetConfig:
    image_size: int = bounded(128, 32, 1024)             # 128 [S]; stage 0 at image_size / 2
    n_i: int = bounded(128, 4, 1024)                     # N_i [I:ATVGnet]; N_a = N_l = 2 N_i [S]
    n_a: int = bounded(0, 0, 4096)                       # 0 = 2 N_i
    n_l: int = bounded(0, 0, 4096)                       # 0 = 2 N_i
    audio_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 256, 512])   # [I:ATVGnet] (errata)
    audio_fc: int = bounded(2048, 1, 65536)
    rnn_hidden: int = bounded(0, 0, 8192)                # 0 = 4 N_i (ConvGRU 128 -> 512 [I:ATVGnet])
    rnn_dropout: float = bounded(0.5, 0.0, 1.0)
    res_dropout: float = bounded(0.5, 0.0, 1.0)
    attention_channels: str = "matched"                  # matched (spec §2.4 [R]) | one (ATVGnet's broadcast map)
    # l^-_k: "features" E_l(L_k) - E_l(L*) (Eq. 5.1 [S]) | "coordinates" E_m(L_k - L*) (ours; docs/avwnet.md)
    landmark_motion: str = "features"
    ndf: int = bounded(64, 1, 1024)                      # N_d = 64 [S]
    d_cond_dim: int = bounded(128, 1, 4096)              # D-side audio code [R]
    d_audio_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 256, 512])
    # Table 5.2 switches
    use_attention: bool = True                           # AM_0, AM_1
    use_adversarial: bool = True                         # L_D0, L_D1 (and the G terms against them)
    use_regression: bool = True                          # L_R
    use_word_loss: bool = True                           # RIM (L_w)
    lip_reader: str = ""                                 # run / checkpoint / export of a `lipreader` (arch staf)
    # AT-net (a run of `avwnet_atnet`) for inference from audio alone (spec §2.10); trained first (spec §2.9)
    landmark_predictor: str = ""
    # loss weights (spec §2.8 [R])
    beta_pix: float = bounded(10.0, 0.0, None)           # β
    word_weight: float = bounded(-1.0, -1.0, None)       # ∂; -1 = 1/T
    lambda_reg: float = bounded(1.0, 0.0, None)          # λ (D) = λ_R (G)
    mouth_y_weight: float = bounded(100.0, 0.0, None)    # L_R's weight on the mouth y-coordinates [I:ATVGnet]
    full_l1_w: float = bounded(1.0, 0.0, None)           # full-frame dynamic L1 [R, I:ATVGnet]
    mouth_dilate: int = bounded(8, 0, 256)               # px at 128^2 (scaled with image_size; 4 at stage 0)
    # how the reader sees the frames when its checkpoint does not say (the world readers' settings)
    word_roi: str = "mouth"
    word_mouth_box: list[float] = field(default_factory=lambda: [0.5, 0.74, 0.32, 0.68])
    word_size: int = bounded(32, 4, 1024)
    lr: float = bounded(2e-4, 0.0, 1.0)                  # Adam, fixed 2e-4 [S]
    beta1: float = bounded(0.5, 0.0, 1.0)                # [I:ATVGnet]
    beta2: float = bounded(0.999, 0.0, 1.0)
    init_gain: float = bounded(0.02, 0.0, 10.0)          # N(0, 0.02) [I:ATVGnet]
    # initial bias of the f_gray heads (ours, not the thesis's: 0 = ATVGnet's init; < 0 starts near the example face)
    gray_bias_init: float = bounded(0.0, -20.0, 20.0)
    mfcc_norm: bool = True                               # per-coefficient train statistics (spec §2.2 [R])

    def __post_init__(self):
        if self.image_size % 16:
            raise ValueError(f"image_size {self.image_size}: must be a multiple of 16 (the code map is S/16)")
        if self.attention_channels not in ("matched", "one"):
            raise ValueError(f"attention_channels '{self.attention_channels}': matched or one")
        if self.landmark_motion not in LANDMARK_MOTIONS:
            raise ValueError(f"landmark_motion '{self.landmark_motion}': {' or '.join(LANDMARK_MOTIONS)}")
        if self.use_word_loss and not self.lip_reader:
            raise ValueError("lip_reader: the frozen training lip reader (a run of method lipreader) is not set; "
                             "train it first, or set model.use_word_loss=false")


def mouth_box_mask(landmarks: torch.Tensor, size: int, dilate: float) -> torch.Tensor:
    """``N x 1 x size x size`` mask of the box around points 48-67 (normalised landmarks), dilated by ``dilate`` px."""
    p = (landmarks[:, MOUTH] + 1) * (size / 2)                       # crop pixels
    lo, hi = p.amin(1) - dilate, p.amax(1) + dilate                  # N x 2 (x, y)
    grid = torch.arange(size, device=landmarks.device, dtype=landmarks.dtype) + 0.5
    inx = (grid[None] >= lo[:, :1]) & (grid[None] <= hi[:, :1])
    iny = (grid[None] >= lo[:, 1:]) & (grid[None] <= hi[:, 1:])
    return (iny[:, :, None] & inx[:, None, :]).to(landmarks.dtype)[:, None]


def regression_loss(pred: torch.Tensor, target: torch.Tensor, mouth_y_weight: float) -> torch.Tensor:
    """L_R: weighted MSE over the 136-vector, ``mouth_y_weight`` on indices 97, 99, ..., 135 [I:ATVGnet]."""
    w = torch.ones(68, 2, device=pred.device, dtype=pred.dtype)
    w[MOUTH, 1] = mouth_y_weight
    return ((pred.float() - target.float()) ** 2 * w).mean()


def reader_input(frames: torch.Tensor, roi: str, box, size: int) -> torch.Tensor:
    """Generated frames ``B x T x 3 x S x S`` in [-1, 1] -> the reader's ``B x 1 x T x size x size`` (the lip data's
    preprocessing, differentiable: ROI crop, BT.601 luma, area resize, STAF normalisation)."""
    s = frames.shape[-1]
    if roi == "mouth":
        top, bottom, left, right = (int(round(v * s)) for v in box)
        frames = frames[..., top:bottom, left:right]
    x = (frames + 1) / 2
    y = x[:, :, 0] * 0.299 + x[:, :, 1] * 0.587 + x[:, :, 2] * 0.114           # B x T x h x w
    b, t = y.shape[:2]
    y = F.interpolate(y.flatten(0, 1)[:, None], size=(size, size), mode="bilinear", antialias=True)   # ~ cv2 INTER_AREA
    y = y.view(b, t, size, size)
    return ((y - STAF_MEAN) / STAF_STD)[:, None]


class AVWnet(Method):
    name = "avwnet"
    ModelConfig = AVWnetConfig
    DataConfig = TalkingDataConfig
    inference_networks = ("G",)
    pipeline = "condsynth.pipelines.talking_face:TalkingFacePipeline"

    def __init__(self, model_cfg: AVWnetConfig, data_cfg: TalkingDataConfig):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        self.G = init_weights(AVWnetGenerator(c.image_size, c.n_i, c.n_a or None, c.n_l or None,
                                              tuple(c.audio_channels), c.audio_fc, c.rnn_hidden or None,
                                              c.rnn_dropout, c.res_dropout, c.use_attention, c.attention_channels,
                                              c.landmark_motion),
                              gain=c.init_gain)
        if c.gray_bias_init:
            with torch.no_grad():
                for head in (self.G.head0, self.G.head1):
                    head.gray.bias.fill_(c.gray_bias_init)
        # the face template the training crops are framed by (photos are aligned to it); saved with G
        self.G.register_buffer("template", torch.zeros(68, 2))
        self.reader = None
        self.atnet = None           # the frozen AT-net (with its PCA), attached by the engine or the pipeline

    def frozen_networks(self):
        c, parts = self.model_cfg, {}
        if c.use_word_loss:
            parts["reader"] = FrozenRef(c.lip_reader, "lipreader")
        if c.landmark_predictor:
            parts["atnet"] = FrozenRef(c.landmark_predictor, "avwnet_atnet")
        return parts

    def inference_frozen(self):
        # the lip reader only serves the word loss (RIM); talking from audio needs the AT-net
        return tuple(n for n in self.frozen_networks() if n != "reader")

    def train(self, mode: bool = True):
        super().train(mode)
        for frozen in (self.reader, self.atnet):    # frozen parts keep their BN statistics (spec §2.6 [R])
            if frozen is not None:
                frozen.eval()
        return self

    @torch.no_grad()
    def predict_landmarks(self, example_landmarks, mfcc, state=None, amplify=None):
        """AT-net's landmarks ``B x T x 68 x 2`` (normalised) and its LSTM state (spec §2.7, §2.10)."""
        if self.atnet is None:
            raise ValueError("this AVWnet has no landmark predictor (model.landmark_predictor)")
        pca = self.atnet.pca
        coeffs, state = self.atnet(pca.project(example_landmarks), mfcc, state)
        return pca.reconstruct(coeffs, amplify), state

    def setup_training(self):
        from condsynth.io.faces import default_template
        c = self.model_cfg
        self.G.template.copy_(torch.tensor(default_template().points, dtype=torch.float32))
        if c.mfcc_norm:
            m = self.build_dataset("train").all_mfcc().reshape(-1, 12)
            self.G.mfcc_mean.copy_(torch.from_numpy(m.mean(0)))
            self.G.mfcc_std.copy_(torch.from_numpy(np.maximum(m.std(0), 1e-3)))
        self.D = {}
        if c.use_adversarial:
            for s, (size, preset) in enumerate([(c.image_size // 2, "avwnet_d0"), (c.image_size, "avwnet_d1")]):
                d = init_weights(AVDiscriminator(size, c.ndf, c.d_cond_dim, tuple(c.d_audio_channels), preset,
                                                 c.use_regression), gain=c.init_gain)
                d.mfcc_mean.copy_(self.G.mfcc_mean)
                d.mfcc_std.copy_(self.G.mfcc_std)
                setattr(self, f"D{s}", d)
                self.D[f"D{s}"] = d

    # ------------------------------------------------------------------ engine contract
    def networks(self):
        return {"G": self.G, **self.D}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        return {name: torch.optim.Adam(net.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
                for name, net in self.networks().items()}

    def build_dataset(self, split: str):
        ds = talking_dataset(self.data_cfg, split)
        if ds.size != self.model_cfg.image_size:
            raise ConfigError(f"{self.data_cfg.root}: the prepared crops are {ds.size}^2 but model.image_size is "
                              f"{self.model_cfg.image_size}")
        return ds

    def _reader_view(self):
        """(roi, mouth box, side) the frozen reader was trained with (its checkpoint's data config)."""
        c = self.model_cfg
        data = getattr(self, "frozen_records", {}).get("reader", {}).get("config", {}).get("data", {})
        return (data.get("roi", c.word_roi), data.get("mouth_box", c.word_mouth_box), data.get("size", c.word_size))

    def word_loss(self, frames: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """L_w (Eq. 5.11) times ∂: -∂ Σ_k p_k[C_target]."""
        per_step = self.reader(reader_input(frames, *self._reader_view()))            # B x T x words
        t = per_step.shape[1]
        w = 1.0 / t if self.model_cfg.word_weight < 0 else self.model_cfg.word_weight
        picked = per_step.float().gather(2, label.long()[:, None, None].expand(-1, t, 1))
        return -w * picked.sum(1).mean()

    def stage_targets(self, batch):
        s = self.model_cfg.image_size
        frames = batch["frames"]
        return [F.interpolate(frames.flatten(0, 1), size=s // 2, mode="area"), frames.flatten(0, 1)]

    def generate(self, batch, G=None) -> TalkingOutput:
        return (G or self.G)(batch["example"], batch["mfcc"], batch["landmarks"], batch["example_landmarks"])

    def training_step(self, batch, ctx: StepContext):
        c = self.model_cfg
        with ctx.autocast():
            out = self.generate(batch, ctx.nets["G"])
        fakes = [out.stage0.flatten(0, 1), out.stage1.flatten(0, 1)]
        grays = [out.gray0.flatten(0, 1), out.gray1.flatten(0, 1)]
        reals = self.stage_targets(batch)
        audio, wrong = batch["mfcc"].flatten(0, 1), batch["mismatch"].flatten(0, 1)
        lm = batch["landmarks"].flatten(0, 1)
        ex_lm = batch["example_landmarks"][:, None].expand_as(batch["landmarks"]).flatten(0, 1)
        logs = {}

        # --- D step (Eq. 5.8-5.9), each D_s with its own optimiser, on the same batch
        if c.use_adversarial:
            for s in (0, 1):
                D = ctx.nets[f"D{s}"]
                with ctx.autocast():
                    code, wrong_code = self.D[f"D{s}"].code(audio), self.D[f"D{s}"].code(wrong)   # once per batch
                    real, real_lm = D(reals[s], audio, wrong, ex_lm, codes=(code, wrong_code))
                    fake, fake_lm = D(fakes[s].detach(), audio, None, ex_lm, codes=(code, None))
                    loss = joint_d_loss(real.uncond, fake.uncond, real.cond, fake.cond, real.wrong)     # Eq. 5.8
                    logs[f"loss_D{s}"] = loss.detach()
                    if c.use_regression:
                        reg = regression_loss(real_lm, lm, c.mouth_y_weight) + regression_loss(
                            fake_lm, lm, c.mouth_y_weight)
                        loss = loss + c.lambda_reg * reg                                                # Eq. 5.9
                        logs[f"loss_R{s}_D"] = reg.detach()
                ctx.backward(loss)
                ctx.step(f"D{s}")

        # --- G step, Ds frozen
        for d in self.D.values():
            set_requires_grad(d, False)
        g = {}
        with ctx.autocast():
            for s in (0, 1):
                size = fakes[s].shape[-1]
                if c.use_adversarial:
                    fake, fake_lm = self.D[f"D{s}"](fakes[s], audio, None, ex_lm)
                    g[f"G{s}"] = joint_g_loss(fake.uncond, fake.cond)                                  # Eq. 5.10
                    if c.use_regression:
                        g[f"R{s}"] = c.lambda_reg * regression_loss(fake_lm, lm, c.mouth_y_weight)
                diff = (fakes[s].float() - reals[s].float()).abs()
                mask = mouth_box_mask(lm, size, c.mouth_dilate * size / 128)
                g[f"pix{s}"] = c.beta_pix * (diff * mask).mean()                                       # β L_pix
                if c.full_l1_w > 0:
                    g[f"l1_{s}"] = c.full_l1_w * (diff * (grays[s].detach().float() + 0.5)).mean()
            if c.use_word_loss:
                g["word"] = self.word_loss(out.stage1, batch["label"])                                 # ∂ L_w
        ctx.backward(sum(g.values()))                                                                  # Eq. 5.12
        ctx.step("G")
        for d in self.D.values():
            set_requires_grad(d, True)
        logs.update({f"loss_{k}": v.detach() for k, v in g.items()})
        logs["gray_mean"] = out.gray1.detach().mean()
        return logs

    # ------------------------------------------------------------------ inference and monitoring
    @torch.no_grad()
    def talk(self, example, mfcc, landmarks, example_landmarks, state=None, encoded=None) -> TalkingOutput:
        return self.G(example, mfcc, landmarks, example_landmarks, state, encoded)

    @torch.no_grad()
    def visuals(self, batch):
        out = self.generate(batch)
        k = batch["frames"].shape[1] // 2
        return {"example": batch["example"], "real": batch["frames"][:, k], "stage1": out.stage1[:, k],
                "f_gray1": out.gray1[:, k].expand(-1, 3, -1, -1) * 2 - 1}

    @torch.no_grad()
    def evaluate(self, batch):
        out = self.generate(batch)
        real = batch["frames"].flatten(0, 1)
        fake = out.stage1.flatten(0, 1)
        lm = batch["landmarks"].flatten(0, 1)
        mask = mouth_box_mask(lm, fake.shape[-1], 0)
        err = ((fake - real) / 2) ** 2
        mse_mouth = (err * mask).sum((1, 2, 3)) / (3 * mask.sum((1, 2, 3))).clamp_min(1)
        ex = batch["example"][:, None].expand_as(batch["frames"]).flatten(0, 1)
        mse_static = (((ex - real) / 2) ** 2 * mask).sum((1, 2, 3)) / (3 * mask.sum((1, 2, 3))).clamp_min(1)
        return {"mouth_psnr": float((-10 * torch.log10(mse_mouth.clamp_min(1e-10))).mean()),
                "static_mouth_psnr": float((-10 * torch.log10(mse_static.clamp_min(1e-10))).mean()),
                "l1": float((fake - real).abs().mean())}
