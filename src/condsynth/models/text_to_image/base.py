"""What HfGAN (thesis ch. 3) and the stacked AttnGAN-style baseline share: the frozen DAMSM text side, the
conditioning, the matching-aware GAN objective and the inference call. The two methods differ only in their
generator and in how many discriminators look at which image (:mod:`.hfgan`, :mod:`.stacked`).

One training step (spec-hfgan-ldcgan.md §3.7; the same for both methods)::

    e, s  = φ(d)                 frozen DAMSM text encoder: words 256 x T, sentence 256 (eval mode)
    images, I_s, μ, log σ² = G(z, s, e)          one image (HfGAN) or one per stage (stacked)
    D step, for each D_k on its image x̂_k and the real image t_k at that size (Eq. 3.3):
        L_D = ½[BCE(D_u(t),1) + BCE(D_u(x̂),0)] + ⅓[BCE(D_c(t,c),1) + BCE(D_c(x̂,c),0) + BCE(D_c(t,c̄),0)]
        c = s (AttnGAN; ``d_condition: sentence``) or I_s (the thesis's D(t | I_s); ``d_condition: ca``),
        c̄ = the condition of the next sample in the batch (AttnGAN's mismatched pairs, B - 1 of them), or with
             ``wrong_pairs: hardest`` the nearest sentence of another class (ours)
    G step (Eq. 3.4-3.5):
        L_G = Σ_k [-½ log D_u(x̂_k) - ½ log D_c(x̂_k, c)] + λ L_DAMSM(x̂_last, d) + L_KL(μ, σ)

``loss_weights: attngan`` switches both to AttnGAN's grouping (spec H11). λ = 5 (AttnGAN's CUB value; the thesis
gives none, H8); L_DAMSM is the four DAMSM terms (Eq. 7-15 of AttnGAN, :mod:`condsynth.losses.damsm`) of the last
image through the frozen DAMSM image encoder, with the DAMSM's own γ1-γ3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from condsynth.config import bounded
from condsynth.data.captions import CaptionDataConfig, caption_dataset, resolve_vocabulary
from condsynth.data.text import encode_captions
from condsynth.errors import ConfigError
from condsynth.losses.damsm import GAMMA1, GAMMA2, GAMMA3, damsm_losses
from condsynth.losses.gan import joint_d_loss, joint_g_loss
from condsynth.models.base import FrozenRef, Method, StepContext
from condsynth.nn.blocks import init_weights, set_requires_grad
from condsynth.nn.discriminators import hardest_mismatched_conditions, mismatched_conditions
from condsynth.nn.text_to_image import kl_loss


@dataclass
class TextToImageConfig:
    damsm: str = ""                                      # a DAMSM run / checkpoint / export (method damsm), frozen
    image_size: int = bounded(256, 16, 1024)             # the generated image (thesis: 256)
    ngf: int = bounded(32, 1, 1024)                      # N_g = 32 [S]
    ndf: int = bounded(64, 1, 1024)                      # N_d = 64 [S]
    z_dim: int = bounded(100, 1, 4096)                   # AttnGAN Z_DIM
    cond_dim: int = bounded(100, 1, 4096)                # I_s, AttnGAN CONDITION_DIM
    text_dim: int = bounded(256, 2, 4096)                # the DAMSM's feature size
    d_condition: Literal["sentence", "ca"] = "sentence"  # s (AttnGAN) or I_s (thesis lines 637-639), spec H10
    loss_weights: Literal["thesis", "attngan"] = "thesis"   # Eq. 3.3/3.4 weighting, spec H11
    lambda_damsm: float = bounded(5.0, 0.0, None)        # λ of Eq. 3.5 (AttnGAN CUB 5, COCO 50)
    kl_weight: float = bounded(1.0, 0.0, None)           # L_KL (StackGAN/AttnGAN; the thesis is silent)
    mask_same_class: bool = True                         # same-class pairs are not DAMSM negatives (AttnGAN)
    # D's mismatched pairs (c̄ of Eq. 3.3): "next": the next sample in the batch (AttnGAN); "hardest": the nearest
    # sentence of another class in the batch, so c̄ tends to differ in one attribute (ours; docs/hfgan.md)
    wrong_pairs: Literal["next", "hardest"] = "next"
    lr_g: float = bounded(1e-3, 0.0, 1.0)                # the slides' schedule starts at 1e-3 (train.schedule steps it)
    lr_d: float = bounded(1e-3, 0.0, 1.0)
    beta1: float = bounded(0.5, 0.0, 1.0)
    beta2: float = bounded(0.999, 0.0, 1.0)
    init: Literal["normal", "orthogonal"] = "normal"     # N(0, 0.02) (spec §3.8); AttnGAN's code: orthogonal
    init_gain: float = bounded(0.02, 0.0, 10.0)

    def __post_init__(self):
        if self.image_size % 16:
            raise ConfigError(f"model.image_size {self.image_size}: must be a multiple of 16 (stage 1 at 1/4)")


class GeneratorOutput(NamedTuple):
    images: list[torch.Tensor]          # one (HfGAN) or one per stage (stacked), smallest first, each B x 3 x S x S
    code: torch.Tensor                  # I_s
    mu: torch.Tensor
    logvar: torch.Tensor
    attention: list[torch.Tensor]       # per attention module, B x T x H x W (β)
    features: dict[str, torch.Tensor]   # named intermediate maps (HfGAN: F_1, F_2, F_2f, F_3, F_3f)


def padding_mask(caption: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """``B x T``, True beyond each caption's length (those words get -inf in the attention)."""
    steps = torch.arange(caption.shape[1], device=caption.device)
    return steps[None] >= torch.as_tensor(length, device=caption.device)[:, None]


class TextToImageGAN(Method):
    """Base of the text-to-image methods; a subclass builds ``self.G`` and ``discriminators()``."""

    ModelConfig = TextToImageConfig
    DataConfig = CaptionDataConfig
    ema_networks = ("G",)
    inference_networks = ("G",)
    pipeline = "condsynth.pipelines.text_to_image:TextToImagePipeline"

    def __init__(self, model_cfg: TextToImageConfig, data_cfg: CaptionDataConfig):
        super().__init__(model_cfg, data_cfg)
        if not model_cfg.damsm:
            raise ConfigError("model.damsm: the frozen DAMSM (a run of method damsm) is not set; train it first "
                              "(configs/damsm/) and give its run folder or export")
        if data_cfg.image_size != model_cfg.image_size:
            raise ConfigError(f"data.image_size {data_cfg.image_size} differs from model.image_size "
                              f"{model_cfg.image_size}")
        self.vocab = resolve_vocabulary(data_cfg)
        self.G = init_weights(self.build_generator(), kind=model_cfg.init, gain=model_cfg.init_gain)
        self.text_encoder = None
        self.image_encoder = None
        self.discriminators: dict[str, torch.nn.Module] = {}

    # -- what a subclass provides -------------------------------------------------------------
    def build_generator(self) -> torch.nn.Module:
        raise NotImplementedError

    def build_discriminators(self) -> dict[str, tuple[torch.nn.Module, int]]:
        """name -> (discriminator, index of the generated image it judges)."""
        raise NotImplementedError

    # -- frozen DAMSM ----------------------------------------------------------------------------
    def frozen_networks(self):
        parts = {"text_encoder": FrozenRef(self.model_cfg.damsm, "damsm", "text_encoder")}
        if self.model_cfg.lambda_damsm > 0:
            parts["image_encoder"] = FrozenRef(self.model_cfg.damsm, "damsm", "image_encoder")
        return parts

    def inference_frozen(self):
        # the image encoder only serves L_DAMSM (Eq. 3.9) and its evaluation: generating needs the text encoder
        return ("text_encoder",)

    def attach_frozen(self, name, net):
        if name == "text_encoder":
            self._check_vocabulary(net)
            if getattr(net, "dim", self.model_cfg.text_dim) != self.model_cfg.text_dim:
                raise ConfigError(f"model.text_dim {self.model_cfg.text_dim}: the DAMSM's features have {net.dim}")
        data = getattr(self, "frozen_records", {}).get(name, {}).get("config", {}).get("data")
        if data is not None:            # an export's DAMSM components then build without the caption data
            data["vocab_words"] = list(self.vocab.words)
        super().attach_frozen(name, net)

    def _check_vocabulary(self, net) -> None:
        """Word ids mean what the DAMSM learnt: its vocabulary (from its config) must be this data's, word for word."""
        from condsynth.config import from_dict
        record = getattr(self, "frozen_records", {}).get("text_encoder", {})
        data = record.get("config", {}).get("data")
        where = f"model.damsm {self.model_cfg.damsm}"
        if data is not None:
            theirs = resolve_vocabulary(from_dict(CaptionDataConfig, data, "data.")).words
            if list(theirs) != list(self.vocab.words):
                raise ConfigError(f"{where}: its vocabulary ({len(theirs)} words) is not this data's "
                                  f"({len(self.vocab)} words); train the DAMSM on the same captions")
        n_words = getattr(getattr(net, "embedding", None), "num_embeddings", None)
        if n_words is not None and n_words != len(self.vocab):
            raise ConfigError(f"{where}: its text encoder knows {n_words} words, this data's vocabulary "
                              f"{len(self.vocab)}; train the DAMSM on the same captions")

    def train(self, mode: bool = True):
        super().train(mode)
        for frozen in (self.text_encoder, self.image_encoder):      # frozen, in eval mode throughout (AttnGAN)
            if frozen is not None:
                frozen.eval()
        return self

    def _damsm_setting(self, key: str, default):
        cfg = getattr(self, "frozen_records", {}).get("text_encoder", {}).get("config", {})
        return cfg.get("model", {}).get(key, default)

    @torch.no_grad()
    def encode_text(self, caption: torch.Tensor, length: torch.Tensor):
        """(words B x D x T, sentence B x D, padding mask B x T) from the frozen text encoder."""
        words, sentence = self.text_encoder(caption, length)
        return words.float(), sentence.float(), padding_mask(caption, length)

    def encode_captions(self, texts: list[str]):
        """Users' captions -> (ids, lengths, unknown words per caption); see :func:`condsynth.data.text.encode_captions`."""
        return encode_captions(self.vocab, texts, self.data_cfg.words_num)

    # -- engine contract -----------------------------------------------------------------------
    def setup_training(self):
        c = self.model_cfg
        self.D_targets = {}
        for name, (net, index) in self.build_discriminators().items():
            setattr(self, name, init_weights(net, kind=c.init, gain=c.init_gain))
            self.discriminators[name] = getattr(self, name)
            self.D_targets[name] = index

    def networks(self):
        return {"G": self.G, **self.discriminators}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        opts = {"G": torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))}
        for name, net in self.discriminators.items():
            opts[name] = torch.optim.Adam(net.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        return opts

    def build_dataset(self, split: str):
        return caption_dataset(self.data_cfg, "train" if split == "train" else self.data_cfg.eval_split, self.vocab)

    def condition(self, sentence: torch.Tensor, out: GeneratorOutput) -> torch.Tensor:
        """D's condition c (spec H10), never a path for G's gradient."""
        return sentence if self.model_cfg.d_condition == "sentence" else out.code.detach()

    def damsm_loss(self, image: torch.Tensor, words, sentence, length, class_id) -> torch.Tensor:
        """L_DAMSM of Eq. 3.5 on the final image: w1 + w2 + s1 + s2 with the frozen DAMSM's γ's."""
        regions, code = self.image_encoder(image)
        out = damsm_losses(regions.float(), code.float(), words, sentence, length,
                           class_id if self.model_cfg.mask_same_class else None,
                           self._damsm_setting("gamma1", GAMMA1), self._damsm_setting("gamma2", GAMMA2),
                           self._damsm_setting("gamma3", GAMMA3), self._damsm_setting("paper_scale", True))
        return out["w1"] + out["w2"] + out["s1"] + out["s2"]

    def mismatched(self, cond: torch.Tensor, sentence: torch.Tensor, class_id) -> torch.Tensor:
        """c̄ of Eq. 3.3 for the real images (``model.wrong_pairs``)."""
        if self.model_cfg.wrong_pairs == "next":
            return mismatched_conditions(cond)
        if class_id is None:        # no classes: every other sample is a candidate
            class_id = torch.arange(cond.shape[0], device=cond.device)
        return hardest_mismatched_conditions(cond, sentence, torch.as_tensor(class_id, device=cond.device))

    def real_at(self, real: torch.Tensor, size: int) -> torch.Tensor:
        if real.shape[-1] == size:
            return real
        return F.interpolate(real, size=(size, size), mode="bilinear", antialias=True, align_corners=False)

    def training_step(self, batch, ctx: StepContext):
        c = self.model_cfg
        real, caption, length = batch["image"], batch["caption"], batch["length"]
        words, sentence, pad = self.encode_text(caption, length)
        z = torch.randn(real.shape[0], c.z_dim, device=real.device)
        with ctx.autocast():
            out = ctx.nets["G"](z, sentence, words, pad)
        cond = self.condition(sentence, out)
        wrong = self.mismatched(cond, sentence, batch.get("class_id"))

        # --- D step: Eq. 3.3 for every discriminator on the image it judges
        logs, loss_d = {}, 0.0
        for name, index in self.D_targets.items():
            fake = out.images[index]
            with ctx.autocast():
                r = ctx.nets[name](self.real_at(real, fake.shape[-1]), cond, wrong_c=wrong)
                f = ctx.nets[name](fake.detach(), cond)
                term = joint_d_loss(r.uncond, f.uncond, r.cond, f.cond, r.wrong, weights=c.loss_weights)
            logs[f"loss_{name}"] = term.detach()
            loss_d = loss_d + term
        ctx.backward(loss_d)
        for name in self.D_targets:
            ctx.step(name)

        # --- G step: Eq. 3.4 against every D, + λ L_DAMSM + L_KL (Eq. 3.5); the Ds frozen and unwrapped
        for net in self.discriminators.values():
            set_requires_grad(net, False)
        with ctx.autocast():
            loss_adv = 0.0
            for name, index in self.D_targets.items():
                f = self.discriminators[name](out.images[index], cond)
                loss_adv = loss_adv + joint_g_loss(f.uncond, f.cond, weights=c.loss_weights)
            loss_kl = kl_loss(out.mu.float(), out.logvar.float())
        loss_damsm = (self.damsm_loss(out.images[-1].float(), words, sentence, length, batch.get("class_id"))
                      if c.lambda_damsm > 0 else torch.zeros((), device=real.device))
        loss_g = loss_adv + c.lambda_damsm * loss_damsm + c.kl_weight * loss_kl
        ctx.backward(loss_g)
        ctx.step("G")
        for net in self.discriminators.values():
            set_requires_grad(net, True)
        return {"loss_D": loss_d.detach(), **logs, "loss_G": loss_g.detach(), "loss_G_adv": loss_adv.detach(),
                "loss_DAMSM": loss_damsm.detach(), "loss_KL": loss_kl.detach()}

    # -- inference -----------------------------------------------------------------------------
    def prepare_for_inference(self) -> None:
        self.eval()

    @torch.no_grad()
    def generate(self, caption: torch.Tensor, length: torch.Tensor, z: torch.Tensor | None = None,
                 sample_condition: bool = True) -> GeneratorOutput:
        """Images for token ids ``B x T`` (``z`` ~ N(0, I) unless given). ``sample_condition=False`` uses I_s = μ."""
        words, sentence, pad = self.encode_text(caption, length)
        if z is None:
            z = torch.randn(caption.shape[0], self.model_cfg.z_dim, device=caption.device)
        return self.G(z, sentence, words, pad, sample_condition=sample_condition)

    @torch.no_grad()
    def visuals(self, batch):
        out = self.generate(batch["caption"], batch["length"])
        return {"real": batch["image"], "generated": out.images[-1]}

    @torch.no_grad()
    def evaluate(self, batch):
        """L_DAMSM of generated images for held-out captions (lower: closer to their captions)."""
        out = self.generate(batch["caption"], batch["length"])
        if self.image_encoder is None:
            return {}
        words, sentence, _ = self.encode_text(batch["caption"], batch["length"])
        return {"damsm": float(self.damsm_loss(out.images[-1], words, sentence, batch["length"],
                                               batch.get("class_id")))}
