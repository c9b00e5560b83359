"""pix2pixHD: high-resolution image synthesis from semantic label maps (Wang et al., CVPR 2018).

Source: spec-translation §2.8 and its errata (the GAN sum over scales, D x 0.5, D padding 2, how E
is trained, the feature clustering), checked against NVIDIA/pix2pixHD.

Input of G (§3.3, §3.4): the label map one-hot encoded with ``label_nc`` classes (``label_nc 0``:
an RGB image instead), ⊕ the instance boundary map B (1 where any 4-neighbour has another instance
id), ⊕ the instance-wise average-pooled output of the feature encoder E(y) (``feat_nc`` channels).

Generators (§3.2), stage by stage (each stage its own run, warm-started with ``train.init_from``):

    global  G = G1 = c7s1-64, d128, d256, d512, d1024, 9 x R1024, u512, u256, u128, u64, c7s1-3
    local   G = G2 = {G1 frozen, LocalEnhancer}:  back(front(x) + G1_last(downsample(x)))
                front = c7s1-32, d64;  back = 3 x R64, u32, c7s1-3;  G1's output layer dropped
    joint   G2 with every part trained

Discriminators (§3.2): D_1, D_2, D_3, 70x70 PatchGANs (instance norm, 4x4 convs padded by 2) on
label-input ⊕ image at scales 1, 1/2, 1/4 (3x3 average pool, stride 2).

Objective (Eq. 5, with the least-squares GAN of the reference code):

    min_G ( ( max_{D_1,D_2,D_3} Σ_k L_GAN(G, D_k) ) + λ_FM Σ_k L_FM(G, D_k) ) + λ_VGG L_VGG(G)

    L_GAN(G, D_k): D_k minimises ½ [E (D_k(s, x) - 1)² + E D_k(s, G(s))²];  G minimises E (D_k(s, G(s)) - 1)²
                   summed over k (the reference's GANLoss; errata), not averaged
    L_FM(G, D_k)  = Σ_i (4 / (n_layers + 1)) (1 / num_D) mean |D_k^(i)(s, x) - D_k^(i)(s, G(s))|      (Eq. 4)
    L_VGG(G)      = Σ_l w_l mean |φ_l(G(s)) - φ_l(x)|,  w = 1/32, 1/16, 1/8, 1/4, 1 on VGG-19 relu1_1..relu5_1

λ_FM = λ_VGG = 10. E has no loss of its own: its parameters join G's optimizer, so it learns only
through G's losses (errata). Adam, lr 2e-4, betas (0.5, 0.999), weights ~ N(0, 0.02).

After training, :meth:`Pix2PixHD.cluster_features` runs K-means (K = 10) over E's per-instance
features, per class (§3.4); at inference a cluster per class (chosen or random) or features
encoded from a reference photo drive the appearance of each instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from condsynth.config import bounded
from condsynth.data.translation import PairedDataConfig, paired_dataset
from condsynth.errors import ConfigError, UserError
from condsynth.losses.gan import GANLoss
from condsynth.losses.reconstruction import FeatureMatchingLoss
from condsynth.models.base import Method, StepContext
from condsynth.nn.blocks import ConvNormAct, init_weights, set_requires_grad
from condsynth.nn.discriminators import MultiScaleDiscriminator
from condsynth.nn.resnet_generator import ResBlock, ResnetGenerator, _pad_mode, _transposed_up
from condsynth.nn.tiled import local_enhancer_handler, register_handler, run_network

Stage = Literal["global", "local", "joint"]


# ----------------------------------------------------------------------------------------- inputs

def instance_edges(inst: torch.Tensor) -> torch.Tensor:
    """Instance boundary map (§3.3): ``N x H x W`` ids -> ``N x 1 x H x W`` float, 1 where any of the four
    neighbours has another id. Both pixels of a differing pair are marked, as in the reference's ``get_edges``."""
    edge = torch.zeros_like(inst, dtype=torch.bool)
    dx = inst[:, :, 1:] != inst[:, :, :-1]
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    dy = inst[:, 1:, :] != inst[:, :-1, :]
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    return edge.unsqueeze(1).float()


def instance_class(ids: torch.Tensor) -> torch.Tensor:
    """The class of an instance id in the Cityscapes convention: the id below 1000 ("stuff"), else id // 1000."""
    return torch.where(ids < 1000, ids, ids // 1000)


def instance_groups(inst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The instances of a batch: ``(ids, sample, inverse)``, one entry per (sample, instance id) pair,
    and for every pixel (flattened N·H·W) the index of its pair. Instances are per sample."""
    n = inst.shape[0]
    span = int(inst.max()) + 1 if inst.numel() else 1
    key = inst.long() + torch.arange(n, device=inst.device).view(n, 1, 1) * span
    keys, inverse = torch.unique(key.flatten(), return_inverse=True)
    return keys % span, keys // span, inverse


def instance_average(feat: torch.Tensor, inst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Instance-wise average pooling (§3.4): every pixel of ``feat`` (``N x C x H x W``) replaced by the mean
    of its instance (``inst``, ``N x H x W``) in its sample. Returns the pooled map and the per-instance
    means (in :func:`instance_groups` order). Vectorised: one ``index_add`` over pixels, differentiable."""
    n, c, h, w = feat.shape
    _, _, inverse = instance_groups(inst)
    flat = feat.permute(0, 2, 3, 1).reshape(-1, c)
    groups = int(inverse.max()) + 1
    sums = flat.new_zeros(groups, c).index_add(0, inverse, flat)
    counts = torch.bincount(inverse, minlength=groups).to(flat.dtype)
    means = sums / counts[:, None]
    return means[inverse].view(n, h, w, c).permute(0, 3, 1, 2), means


# ----------------------------------------------------------------------------------------- networks

class LocalEnhancer(nn.Module):
    """G2 of §3.2: ``back(front(x) + G1_last(downsample(x)))``.

    ``global_net`` is G1 (a :class:`ResnetGenerator`); only its ``ngf``-wide last feature map is used, its
    output layer is not (and is frozen). ``front`` = c7s1-ngf_local, d(2 ngf_local); ``back`` = n_blocks x
    R(2 ngf_local), u(ngf_local), c7s1-out + tanh; 2 ngf_local must equal G1's ngf. A tiled-inference helper
    walks these attributes, so they keep these names and this structure."""

    def __init__(self, global_net: ResnetGenerator, in_channels: int, out_channels: int = 3, ngf_local: int = 32,
                 n_blocks: int = 3, norm: str = "instance", padding: str = "reflect"):
        super().__init__()
        width = global_net.out[0].in_channels
        if width != 2 * ngf_local:
            raise ValueError(f"G1's last feature map is {width} wide; the local enhancer needs 2 x ngf_local = "
                             f"{2 * ngf_local}")
        mode = _pad_mode(padding)
        self.global_net = global_net
        self.global_net.out.requires_grad_(False)       # unused here (the reference drops it)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.front = nn.Sequential(
            ConvNormAct(in_channels, ngf_local, 7, padding=3, norm=norm, act="relu", pad_mode=mode),   # c7s1-32
            ConvNormAct(ngf_local, 2 * ngf_local, 3, stride=2, padding=1, norm=norm, act="relu"))     # d64
        self.back = nn.Sequential(
            *[ResBlock(2 * ngf_local, 1, norm, padding) for _ in range(n_blocks)],                     # 3 x R64
            _transposed_up(2 * ngf_local, ngf_local, norm),                                             # u32
            nn.Conv2d(ngf_local, out_channels, 7, padding=3, padding_mode=mode), nn.Tanh())            # c7s1-3

    @property
    def stride(self) -> int:
        return 2 * self.global_net.stride

    def global_last(self, x: torch.Tensor) -> torch.Tensor:
        """G1's last feature map (before its output layer) on ``x``."""
        g = self.global_net
        return g.up(g.blocks(g.down(g.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(self.front(x) + self.global_last(self.downsample(x)))


register_handler(LocalEnhancer, local_enhancer_handler)    # tiled inference (nn/tiled.py) walks it


class FeatureEncoder(nn.Module):
    """E of §3.4: pix2pixHD's Encoder (c7s1-16, 4 downs, 4 ups, c7s1-feat_nc, tanh; a ResNet generator
    without residual blocks), whose output is average-pooled per instance."""

    def __init__(self, in_channels: int = 3, feat_nc: int = 3, nef: int = 16, n_down: int = 4,
                 norm: str = "instance", padding: str = "reflect"):
        super().__init__()
        self.net = ResnetGenerator(in_channels, feat_nc, nef, n_down, 0, norm, padding)

    @property
    def stride(self) -> int:
        return self.net.stride

    def forward(self, image: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        return instance_average(self.net(image), inst)[0]

    def instance_features(self, image: torch.Tensor, inst: torch.Tensor):
        """``(ids, sample, means, areas)``: one row per (sample, instance), E's pooled feature and pixel count."""
        ids, sample, inverse = instance_groups(inst)
        _, means = instance_average(self.net(image), inst)
        return ids, sample, means, torch.bincount(inverse, minlength=len(ids))


class FeatureClusters(nn.Module):
    """K-means centres of E's instance features, per class: ``centres[c, :counts[c]]`` (``feat_nc`` each);
    ``instances[c]``: how many instances entered K-means. Buffers only, so a checkpoint and an export carry
    them like weights (the ``clusters`` component); never trained."""

    def __init__(self, n_classes: int, max_clusters: int, feat_nc: int):
        super().__init__()
        self.register_buffer("centres", torch.zeros(n_classes, max_clusters, feat_nc))
        self.register_buffer("counts", torch.zeros(n_classes, dtype=torch.long))
        self.register_buffer("instances", torch.zeros(n_classes, dtype=torch.long))

    @property
    def empty(self) -> bool:
        return int(self.counts.sum()) == 0


def kmeans(data: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """``k`` centres of ``data`` (rows) with k-means++ seeding and Lloyd iterations (scipy's kmeans2, fixed
    seed; the reference uses scikit-learn's KMeans(random_state=0), not available here)."""
    import warnings

    from scipy.cluster.vq import kmeans2
    if k >= len(data):
        return data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # "one of the clusters is empty": kmeans2 keeps the old centre
        centres, _ = kmeans2(data.astype(np.float64), k, iter=50, minit="++", seed=seed)
    return centres


# ----------------------------------------------------------------------------------------- config

@dataclass
class Pix2PixHDConfig:
    stage: Stage = "global"             # global: G1 alone; local: G2 with G1 frozen; joint: all of G2
    label_nc: int = bounded(35, 0, 4096)      # classes of the label map; 0: A is an RGB image (--label_nc 0)
    class_names: tuple[str, ...] = ()   # names of the classes (for --style NAME=K and the cluster summary)
    in_channels: int = bounded(3, 1, 64)      # channels of A when label_nc is 0
    out_channels: int = bounded(3, 1, 64)
    ngf: int = bounded(64, 2, 4096)     # G1's width; the local enhancer's is ngf / 2
    n_down_global: int = bounded(4, 1, 8)
    n_blocks_global: int = bounded(9, 0, 64)
    n_blocks_local: int = bounded(3, 0, 64)
    norm: Literal["instance", "batch", "none"] = "instance"
    padding: Literal["reflect", "zero", "replicate"] = "reflect"
    use_encoder: bool = True            # E's instance features as input (the reference's --instance_feat; off there)
    feat_nc: int = bounded(3, 1, 64)
    nef: int = bounded(16, 1, 4096)
    n_down_encoder: int = bounded(4, 1, 8)
    # E's normalisation; "" = model.norm, as the reference (one --norm for G and E). NOT the reference when
    # set: instance norm removes each photo's mean colour, so E cannot encode a building's absolute colour
    # (docs/pix2pixhd.md, "Deviations"); the scenes configs use batch.
    encoder_norm: Literal["", "instance", "batch", "none"] = ""
    num_d: int = bounded(3, 1, 8)
    d_layers: int = bounded(3, 1, 8)
    ndf: int = bounded(64, 1, 4096)
    d_padding: int = bounded(2, 0, 3)   # 2 as pix2pixHD's padw = ceil((4 - 1) / 2); 1 as pix2pix
    gan_mode: Literal["lsgan", "vanilla", "hinge", "wgan"] = "lsgan"
    scale_reduction: Literal["sum", "mean"] = "sum"    # GAN terms over the D scales (reference: sum)
    d_loss_scale: float = bounded(0.5, 0.0, None)      # loss_D = (fake + real) x 0.5
    lambda_fm: float = bounded(10.0, 0.0, None)
    lambda_vgg: float = bounded(10.0, 0.0, None)       # needs a VGG-19 weight file (vgg_weights or the caches)
    lambda_l1: float = bounded(0.0, 0.0, None)         # NOT in the paper: λ·mean|G(s) - x|, a stand-in
                                                       # reconstruction term where no VGG-19 file exists
    vgg_weights: str = ""
    n_clusters: int = bounded(10, 1, 1000)             # K of the per-class K-means
    cluster_min_area: float = bounded(0.5, 0.0, None)  # reference's area test, see cluster_features
    cluster_seed: int = bounded(0, 0, 2**31 - 1)
    lr: float = bounded(2e-4, 0.0, 1e3)
    beta1: float = bounded(0.5, 0.0, 1.0)
    beta2: float = bounded(0.999, 0.0, 1.0)
    init_gain: float = bounded(0.02, 0.0, 1e3)

    def __post_init__(self):
        if self.ngf % 2:
            raise ValueError(f"ngf must be even (the local enhancer is ngf / 2 wide), got {self.ngf}")
        if self.class_names and len(self.class_names) != self.label_nc:
            raise ValueError(f"class_names has {len(self.class_names)} names for label_nc {self.label_nc} classes")


class Pix2PixHD(Method):
    name = "pix2pixhd"
    ModelConfig = Pix2PixHDConfig
    DataConfig = PairedDataConfig
    ema_networks = ("G",)
    inference_networks = ("G", "E", "clusters")
    pipeline = "condsynth.pipelines.label_translate:LabelTranslationPipeline"

    def __init__(self, model_cfg: Pix2PixHDConfig, data_cfg: PairedDataConfig):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        # the pix2pixhd (SPLIT_label) and cityscapes (gtFine labelIds) layouts always read A as class ids
        if c.label_nc > 0 and not (data_cfg.label_a or data_cfg.layout in ("pix2pixhd", "cityscapes")):
            raise ConfigError(f"model.label_nc is {c.label_nc}: the A side must be read as class ids "
                              f"(data.label_a=true), or set model.label_nc=0 for RGB input images")
        self.instances = bool(data_cfg.instances)
        self.label_channels = (c.label_nc or c.in_channels) + (1 if self.instances else 0)
        g_in = self.label_channels + (c.feat_nc if c.use_encoder else 0)
        g1 = ResnetGenerator(g_in, c.out_channels, c.ngf, c.n_down_global, c.n_blocks_global, c.norm, c.padding)
        if c.stage == "global":
            self.G = init_weights(g1, gain=c.init_gain)
        else:
            self.G = init_weights(LocalEnhancer(g1, g_in, c.out_channels, c.ngf // 2, c.n_blocks_local,
                                                c.norm, c.padding), gain=c.init_gain)
            if c.stage == "local":
                self.G.global_net.requires_grad_(False)     # G1 fixed while the local enhancer learns
        e_norm = c.encoder_norm or c.norm
        self.E = init_weights(FeatureEncoder(c.out_channels, c.feat_nc, c.nef, c.n_down_encoder, e_norm, c.padding),
                              gain=c.init_gain) if c.use_encoder else None
        self.clusters = FeatureClusters(max(c.label_nc, 1), c.n_clusters, c.feat_nc) if c.use_encoder else None

    def setup_training(self):
        c = self.model_cfg
        self.D = init_weights(MultiScaleDiscriminator(c.num_d, in_channels=self.label_channels + c.out_channels,
                                                      ndf=c.ndf, n_layers=c.d_layers, norm=c.norm,
                                                      return_features=True, padding=c.d_padding), gain=c.init_gain)
        self.gan_loss = GANLoss(c.gan_mode, scale_reduction=c.scale_reduction)
        self.fm_loss = FeatureMatchingLoss(n_layers=c.d_layers)
        self.vgg_loss = None
        if c.lambda_vgg > 0:
            from condsynth.losses.perceptual import PerceptualLoss
            self.vgg_loss = PerceptualLoss.from_preset("pix2pixhd", weights_path=c.vgg_weights or None)

    # ------------------------------------------------------------------ engine contract
    def networks(self):
        nets = {"G": self.G, "D": self.D}
        if self.E is not None:
            nets.update(E=self.E, clusters=self.clusters)   # clusters: buffers, saved, never optimised
        return nets

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        params = [p for p in self.G.parameters() if p.requires_grad]     # local stage: not G1
        if self.E is not None:
            params += list(self.E.parameters())                          # E learns through G's losses
        return {"G": torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2)),
                "D": torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))}

    def build_dataset(self, split: str):
        return paired_dataset(self.data_cfg, split)

    def init_weights_for(self, name: str, weights: dict) -> dict:
        """``train.init_from`` a global run into a local one: G1's weights become ``G.global_net``'s; the
        local enhancer's own layers (``front``, ``back``) keep their initialisation. Everything else
        (a local run into a joint one, E, D) fits as it is."""
        if name != "G" or not isinstance(self.G, LocalEnhancer) or any(k.startswith("global_net.") for k in weights):
            return weights
        mapped = {f"global_net.{k}": v for k, v in weights.items()}
        mapped.update({k: v for k, v in self.G.state_dict().items() if not k.startswith("global_net.")})
        return mapped

    # ------------------------------------------------------------------ inputs
    def check_labels(self, labels: torch.Tensor, names=None) -> None:
        """Class ids must lie in [0, label_nc): one line naming the sample, not a one_hot traceback."""
        c = self.model_cfg
        lo, hi = int(labels.min()), int(labels.max())
        if lo >= 0 and hi < c.label_nc:
            return
        bad = hi if hi >= c.label_nc else lo
        which = ""
        if names is not None:
            per = labels.flatten(1)
            i = int(((per >= c.label_nc) | (per < 0)).any(1).nonzero()[0])
            which = f" in '{names[i]}'"
        raise UserError(f"label id {bad}{which} is outside 0..{c.label_nc - 1} (model.label_nc={c.label_nc}); "
                        f"set model.label_nc to the number of classes, or check the label maps "
                        f"(condsynth data check labels DIR)")

    def encode_input(self, labels: torch.Tensor, inst: torch.Tensor | None = None, names=None) -> torch.Tensor:
        """G's and D's label input: one-hot labels (``N x H x W`` ids; or the ``N x C x H x W`` image when
        ``label_nc`` is 0) ⊕ the instance boundary map."""
        c = self.model_cfg
        if c.label_nc > 0:
            if labels.is_floating_point():
                raise UserError(f"model.label_nc is {c.label_nc} but the label input is an image (RGB mode "
                                f"folders SPLIT_A?): set model.label_nc=0, or give class-id label maps")
            self.check_labels(labels, names)
            x = F.one_hot(labels.long(), c.label_nc).permute(0, 3, 1, 2).float()
        else:
            x = labels
        if self.instances:
            if inst is None:
                raise UserError("this pix2pixHD model was trained with instance maps (data.instances): "
                                "give one per label map (--instances DIR)")
            x = torch.cat([x, instance_edges(inst)], 1)
        return x

    def pooling_ids(self, labels: torch.Tensor, inst: torch.Tensor | None) -> torch.Tensor:
        """What E pools over: the instance map, or without one the label map (one "instance" per class)."""
        if inst is not None:
            return inst
        if self.model_cfg.label_nc == 0:
            return torch.zeros(labels.shape[0], *labels.shape[-2:], dtype=torch.long, device=labels.device)
        return labels

    # ------------------------------------------------------------------ training
    def training_step(self, batch, ctx: StepContext):
        c = self.model_cfg
        real, labels, inst = batch["B"], batch["A"], batch.get("inst")
        G, D = ctx.nets["G"], ctx.nets["D"]
        with ctx.autocast():
            label_in = self.encode_input(labels, inst, batch.get("name"))
            g_in = label_in
            if self.E is not None:
                g_in = torch.cat([label_in, ctx.nets["E"](real, self.pooling_ids(labels, inst))], 1)
            fake = G(g_in)

        # --- G step (the reference's order: G, then D, both against the same D). D is frozen and unwrapped.
        set_requires_grad(self.D, False)
        with ctx.autocast():
            pred_fake = self.D(torch.cat([label_in, fake], 1))
            with torch.no_grad():
                pred_real = self.D(torch.cat([label_in, real], 1))
            loss_g_gan = self.gan_loss(pred_fake, True, for_discriminator=False)       # Σ_k E (D_k(s, G(s)) - 1)²
            loss_g_fm = c.lambda_fm * self.fm_loss(pred_fake, pred_real)              # λ_FM Σ_k L_FM (Eq. 4)
            loss_g_vgg = c.lambda_vgg * self.vgg_loss(fake, real) if self.vgg_loss is not None \
                else fake.new_zeros(())
            loss_g_l1 = c.lambda_l1 * F.l1_loss(fake, real) if c.lambda_l1 > 0 else fake.new_zeros(())
            loss_g = loss_g_gan + loss_g_fm + loss_g_vgg + loss_g_l1
        ctx.backward(loss_g)
        ctx.step("G")
        set_requires_grad(self.D, True)

        # --- D step: ½ Σ_k [E (D_k(s, x) - 1)² + E D_k(s, G(s))²]
        with ctx.autocast():
            loss_d_fake = self.gan_loss(D(torch.cat([label_in, fake.detach()], 1)), False)
            loss_d_real = self.gan_loss(D(torch.cat([label_in, real], 1)), True)
            loss_d = c.d_loss_scale * (loss_d_fake + loss_d_real)
        ctx.backward(loss_d)
        ctx.step("D")
        return {"loss_G": loss_g.detach(), "loss_G_GAN": loss_g_gan.detach(), "loss_G_FM": loss_g_fm.detach(),
                "loss_G_VGG": loss_g_vgg.detach(), "loss_G_L1": loss_g_l1.detach(), "loss_D": loss_d.detach(),
                "loss_D_real": loss_d_real.detach(),
                "loss_D_fake": loss_d_fake.detach()}

    # ------------------------------------------------------------------ feature clustering (§3.4)
    def class_name(self, cls: int) -> str:
        names = self.model_cfg.class_names
        return names[cls] if cls < len(names) else str(cls)

    def class_id(self, name: str | int) -> int:
        """A class given by name (``model.class_names``) or id."""
        if isinstance(name, (int, np.integer)) or str(name).isdigit():
            cls = int(name)
            if not 0 <= cls < max(self.model_cfg.label_nc, 1):
                raise UserError(f"class {cls} does not exist (model.label_nc={self.model_cfg.label_nc})")
            return cls
        names = list(self.model_cfg.class_names)
        if name not in names:
            known = ", ".join(names) if names else "none; give class ids"
            raise UserError(f"unknown class '{name}' (class names: {known})")
        return names.index(name)

    @torch.no_grad()
    def cluster_features(self, dataset=None, batch_size: int = 4) -> dict[str, int]:
        """K-means over E's instance features, per class; stored in :attr:`clusters`. Returns clusters per class.

        As the reference's ``encode_features`` + ``encode_features.py``: for every image of ``dataset``
        (default: the training split, without augmentation), E's pooled feature of each instance; its class is
        the id below 1000, else id // 1000. An instance enters K-means only if ``area / (h·w // 32) >
        cluster_min_area`` (0.5): the reference's stored "ratio" with block_num 32, i.e. the instance covers
        more than 1/64 of the image. K = min(n_clusters, count) per class, seeded (``cluster_seed``).
        """
        if self.E is None:
            raise UserError("this pix2pixHD model has no feature encoder (model.use_encoder=false): nothing to cluster")
        c = self.model_cfg
        if c.label_nc == 0:
            raise UserError("feature clustering needs class ids (model.label_nc > 0)")
        if dataset is None:
            from condsynth.data.translation import PairedImageDataset
            dataset = PairedImageDataset(self.data_cfg, self.data_cfg.train_split, train=False)
        device = next(self.E.parameters()).device
        was_training = self.E.training
        self.E.eval()
        per_class: dict[int, list[np.ndarray]] = {}
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
        for batch in loader:
            real = batch["B"].to(device)
            labels = batch["A"].to(device)
            inst = batch["inst"].to(device) if "inst" in batch else None
            ids, _, means, areas = self.E.instance_features(real, self.pooling_ids(labels, inst))
            h, w = real.shape[-2:]
            keep = areas.double() / (h * w // 32) > c.cluster_min_area
            classes = instance_class(ids)
            for cls, feat in zip(classes[keep].tolist(), means[keep].double().cpu().numpy()):
                if cls < c.label_nc:
                    per_class.setdefault(cls, []).append(feat)
        self.E.train(was_training)
        cl = self.clusters
        cl.centres.zero_()
        cl.counts.zero_()
        cl.instances.zero_()
        for cls, feats in sorted(per_class.items()):
            data = np.stack(feats)
            centres = kmeans(data, min(c.n_clusters, len(data)), seed=c.cluster_seed)
            cl.centres[cls, : len(centres)] = torch.as_tensor(centres, dtype=cl.centres.dtype)
            cl.counts[cls] = len(centres)
            cl.instances[cls] = len(data)
        return self.cluster_summary()

    def cluster_summary(self) -> dict[str, int]:
        if self.clusters is None:
            return {}
        return {self.class_name(i): int(k) for i, k in enumerate(self.clusters.counts.tolist()) if k > 0}

    def check_style(self, style: dict) -> dict[int, int]:
        """``{class name or id: cluster index}`` -> ``{class id: index}``, each index checked against the clusters."""
        if self.clusters is None:
            raise UserError("this pix2pixHD model has no feature encoder (model.use_encoder=false): no styles")
        out = {}
        for key, index in style.items():
            cls = self.class_id(key)
            have = int(self.clusters.counts[cls])
            if not 0 <= int(index) < have:
                which = f"clusters 0..{have - 1}" if have else "no clusters"
                raise UserError(f"style {self.class_name(cls)}={index}: class '{self.class_name(cls)}' has {which} "
                                f"({have} in all)")
            out[cls] = int(index)
        return out

    def cluster_features_map(self, ids_map: torch.Tensor, style: dict | None = None,
                             seed: int | None = 0) -> torch.Tensor:
        """E's input features from the cluster centres: each instance gets its class's chosen cluster
        (``style``, ``{class: index}``) or, for a class not chosen, a random cluster per instance (as the
        reference's ``sample_features``; seeded). Classes without clusters get zeros."""
        cl = self.clusters
        if cl.empty:
            raise UserError("this model's feature clusters were never computed: export it with "
                            "`condsynth export RUN --cluster-features --out DIR`, or give a style photo (--style-from)")
        chosen = self.check_style(style or {})
        ids, _, inverse = instance_groups(ids_map)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        rows = torch.zeros(len(ids), cl.centres.shape[-1], device=cl.centres.device)
        for i, cls in enumerate(instance_class(ids).tolist()):
            if cls >= cl.counts.shape[0]:
                continue
            have = int(cl.counts[cls])
            if cls in chosen:
                rows[i] = cl.centres[cls, chosen[cls]]
            elif have:
                rows[i] = cl.centres[cls, int(torch.randint(have, (1,), generator=gen))]
        n, h, w = ids_map.shape
        return rows[inverse].view(n, h, w, -1).permute(0, 3, 1, 2)

    # ------------------------------------------------------------------ inference and monitoring
    @torch.no_grad()
    def translate(self, labels: torch.Tensor, inst: torch.Tensor | None = None, style=None,
                  seed: int | None = 0, tile: int | None = None) -> torch.Tensor:
        """Label maps (``N x H x W`` ids; ``N x C x H x W`` images when label_nc is 0) -> images in [-1, 1].

        ``style``: None (a random cluster per instance, ``seed``), ``{class name or id: cluster index}``
        (chosen classes; others random), or a photo ``N x 3 x H x W`` in [-1, 1] with these label and
        instance maps, whose features E encodes. Ignored by a model without an encoder. ``tile``: G runs
        layer by layer on tiles (condsynth.nn.tiled: the same output with less memory)."""
        x = self.encode_input(labels, inst)
        if self.E is not None:
            ids = self.pooling_ids(labels, inst)
            if isinstance(style, torch.Tensor):
                if style.shape[-2:] != x.shape[-2:]:
                    raise UserError(f"the style photo is {style.shape[-1]}x{style.shape[-2]}, its label map "
                                    f"{x.shape[-1]}x{x.shape[-2]}: they must have the same size")
                feat = self.E(style, ids)
            else:
                feat = self.cluster_features_map(ids, style, seed)
            x = torch.cat([x, feat], 1)
        return run_network(self.G, x, tile)

    def _encode_batch(self, batch):
        labels, inst, real = batch["A"], batch.get("inst"), batch["B"]
        x = self.encode_input(labels, inst)
        if self.E is not None:
            x = torch.cat([x, self.E(real, self.pooling_ids(labels, inst))], 1)
        return x

    def _label_image(self, labels: torch.Tensor) -> torch.Tensor:
        """Label maps as images in [-1, 1] for the grids (the scenes palette for ids)."""
        if self.model_cfg.label_nc == 0:
            return labels
        from condsynth.io.images import default_palette
        palette = torch.as_tensor(default_palette(max(self.model_cfg.label_nc, 1)), device=labels.device)
        return palette[labels.clamp(0, len(palette) - 1)].permute(0, 3, 1, 2).float() / 127.5 - 1

    @torch.no_grad()
    def visuals(self, batch):
        """Input labels, output with E's features from the real photo, and the photo."""
        return {"input": self._label_image(batch["A"]), "output": self.G(self._encode_batch(batch)),
                "target": batch["B"]}

    @torch.no_grad()
    def evaluate(self, batch):
        return {"L1": F.l1_loss(self.G(self._encode_batch(batch)), batch["B"]).item()}
