"""DAMSM pretraining (Xu et al., AttnGAN 2018, §3.3): the text encoder HfGAN and its family stand on.

A text encoder (AttnGAN's bi-LSTM, or MiniLM) and an image encoder (Inception taps with the user's
ImageNet weights, or a small CNN for CPU worlds) are trained jointly so that words match image
regions (word-level loss, Eq. 7-13) and sentences match images (sentence-level loss, Eq. 14-15);
the equations are in :mod:`condsynth.losses.damsm`. One step::

    e, ē = text_encoder(caption, length)       # 256 x T words, 256 sentence
    v, v̄ = image_encoder(image)                # 256 x 17 x 17 (Inception) / 16 x 16 (small CNN at 64²), 256
    L = L_1^w + L_2^w + L_1^s + L_2^s          # same-class pairs masked as negatives
    clip the text encoder's gradient norm to 0.25, Adam step (lr 2e-3, betas 0.5/0.999)

Held-out evaluation: R-precision (R = 1) of the sentence/global cosine, each image against its own
caption and 99 captions of other images (fewer candidates when the eval set is smaller), so that
the checkpoint can be chosen by it (``train.eval_every``).

The vocabulary comes from ``data.vocab`` / ``DATA_ROOT/vocab.json`` / the training captions
(:func:`condsynth.data.captions.resolve_vocabulary`), read when the method is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from condsynth.data.captions import CaptionDataConfig, caption_dataset, resolve_vocabulary
from condsynth.data.text import encode_captions
from condsynth.errors import ConfigError
from condsynth.losses.damsm import GAMMA1, GAMMA2, GAMMA3, damsm_losses
from condsynth.metrics.text_image import RPrecision, r_precision
from condsynth.metrics.base import scalar
from condsynth.models.base import Method, StepContext
from condsynth.nn.damsm import build_image_encoder
from condsynth.nn.text_encoders import build_text_encoder


@dataclass
class DAMSMConfig:
    text_encoder: str = "rnn"             # rnn (AttnGAN's bi-LSTM) | minilm (offline all-MiniLM-L6-v2)
    dim: int = 256                        # word / sentence / region feature size (AttnGAN TEXT.EMBEDDING_DIM)
    emb_dim: int = 300                    # bi-LSTM word embedding
    rnn_dropout: float = 0.5
    minilm_finetune: bool = False         # train MiniLM's weights too (then they are saved in checkpoints)
    image_encoder: str = "small_cnn"      # inception (AttnGAN; needs the user's weights) | small_cnn (CPU worlds)
    cnn_width: int = 32
    cnn_global: str = "mean"              # small_cnn's global code: mean (AttnGAN's average pool) | flatten (keeps
    cnn_coords: bool = False              #   position, ours); coords: two coordinate channels in (CoordConv, ours)
    inception_weights: str = ""           # the TF-FID Inception file (pt_inception-2015-12-05-6726825d.pth)
    gamma1: float = GAMMA1                # 5 as the paper; AttnGAN's DAMSM configs use 4
    gamma2: float = GAMMA2
    gamma3: float = GAMMA3
    paper_scale: bool = True              # R(Q,D) with the paper's 1/γ2 (Eq. 10); false: AttnGAN's code
    mask_same_class: bool = True          # same-class pairs are not negatives (AttnGAN)
    lr: float = 2e-3
    beta1: float = 0.5
    beta2: float = 0.999
    text_grad_clip: float = 0.25          # AttnGAN clips the text encoder's gradient norm only (0: off)
    eval_candidates: int = 100            # R-precision: own caption + 99 others

    def __post_init__(self):
        if self.text_encoder not in ("rnn", "minilm"):
            raise ConfigError(f"model.text_encoder: must be rnn or minilm, got '{self.text_encoder}'")
        if self.image_encoder not in ("small_cnn", "inception"):
            raise ConfigError(f"model.image_encoder: must be small_cnn or inception, got '{self.image_encoder}'")
        if self.cnn_global not in ("mean", "flatten"):
            raise ConfigError(f"model.cnn_global: must be mean or flatten, got '{self.cnn_global}'")


class AdaptiveRPrecision(RPrecision):
    """R-precision with ``candidates`` where the eval set has that many pairs, else all of them; NaN with
    fewer than two pairs (one caption against none is no test)."""

    def compute(self) -> dict[str, torch.Tensor]:
        img = torch.cat(self.img) if isinstance(self.img, list) else self.img
        txt = torch.cat(self.txt) if isinstance(self.txt, list) else self.txt
        n = len(img)
        if n < 2:
            nan = scalar(float("nan"))
            return {"r_precision": nan, "r_precision_std": nan, "candidates": scalar(float(n))}
        c = min(self.candidates, n)
        mean, std = r_precision(img, txt, candidates=c, splits=min(self.splits, n), seed=self.seed)
        return {"r_precision": scalar(mean), "r_precision_std": scalar(std), "candidates": scalar(float(c))}


class DAMSM(Method):
    name = "damsm"
    ModelConfig = DAMSMConfig
    DataConfig = CaptionDataConfig
    inference_networks = ("text_encoder", "image_encoder")
    pipeline = "condsynth.pipelines.text_image:TextImagePipeline"

    def __init__(self, model_cfg: DAMSMConfig, data_cfg: CaptionDataConfig):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        self.vocab = resolve_vocabulary(data_cfg)
        self.text_encoder = build_text_encoder(c.text_encoder, self.vocab.words, c.dim, c.emb_dim, c.rnn_dropout,
                                               c.minilm_finetune)
        self.image_encoder = build_image_encoder(c.image_encoder, c.dim, c.cnn_width, c.inception_weights or None,
                                                 c.cnn_global, c.cnn_coords, data_cfg.image_size)

    def networks(self):
        return {"text_encoder": self.text_encoder, "image_encoder": self.image_encoder}

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        params = [p for net in self.networks().values() for p in net.parameters() if p.requires_grad]
        return {"damsm": torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2))}

    def build_dataset(self, split: str):
        return caption_dataset(self.data_cfg, "train" if split == "train" else self.data_cfg.eval_split, self.vocab)

    def losses(self, batch, text_encoder=None, image_encoder=None) -> dict:
        c = self.model_cfg
        words, sentence = (text_encoder or self.text_encoder)(batch["caption"], batch["length"])
        regions, code = (image_encoder or self.image_encoder)(batch["image"])
        classes = batch["class_id"] if c.mask_same_class else None
        return damsm_losses(regions, code, words, sentence, batch["length"], classes, c.gamma1, c.gamma2,
                            c.gamma3, c.paper_scale)

    def training_step(self, batch, ctx: StepContext):
        out = self.losses(batch, ctx.nets["text_encoder"], ctx.nets["image_encoder"])
        loss = out["w1"] + out["w2"] + out["s1"] + out["s2"]
        ctx.backward(loss)
        if self.model_cfg.text_grad_clip > 0:         # AttnGAN pretrain_DAMSM: clip_grad_norm_(rnn_model, 0.25)
            torch.nn.utils.clip_grad_norm_(self.text_encoder.parameters(), self.model_cfg.text_grad_clip)
        ctx.step("damsm")
        return {"loss": loss.detach(), "loss_w1": out["w1"].detach(), "loss_w2": out["w2"].detach(),
                "loss_s1": out["s1"].detach(), "loss_s2": out["s2"].detach()}

    # -- evaluation and inference -------------------------------------------------------------
    @torch.no_grad()
    def embed(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Global image features and sentence features of a batch (the R-precision space)."""
        _, sentence = self.text_encoder(batch["caption"], batch["length"])
        _, code = self.image_encoder(batch["image"])
        return code, sentence

    def eval_metrics(self):
        return {"damsm": AdaptiveRPrecision(candidates=self.model_cfg.eval_candidates, splits=10, seed=0)}

    def eval_update(self, batch, metrics):
        code, sentence = self.embed(batch)
        metrics["damsm"].update(code, sentence)

    @torch.no_grad()
    def evaluate(self, batch):
        out = self.losses(batch)
        return {"loss_w": float(out["w1"] + out["w2"]), "loss_s": float(out["s1"] + out["s2"])}

    def encode_captions(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """Users' captions -> (ids B x words_num, lengths, unknown words per caption); UserError for empty or
        all-unknown captions; longer captions keep their first ``data.words_num`` words."""
        return encode_captions(self.vocab, texts, self.data_cfg.words_num)

    @torch.no_grad()
    def visuals(self, batch):
        """The images and, beside each, where its own caption's words look (attention averaged over words)."""
        out = self.losses(batch)
        images = batch["image"]
        maps = []
        for j, a in enumerate(out["attention"]):
            side = int(round(a.shape[1] ** 0.5))
            m = a.mean(0).reshape(1, 1, side, side)
            m = F.interpolate(m / m.max().clamp_min(1e-8), size=images.shape[-2:], mode="nearest")
            maps.append(m[0].expand(3, -1, -1) * 2 - 1)
        return {"image": images, "attention": torch.stack(maps)}
