"""The attention-aware painting agent (thesis Sec. 6.3.3): model-based DDPG with an attention
module, feature-masked rewards and a focus reward.

Its parts, each in its own file: the environment (renderer, compositing, replay) in :mod:`.env`,
the attention module (Sec. 6.3.3.1) in :mod:`.attention`, the feature masks and L_vgg
(Sec. 6.3.3.2) in :mod:`.feature_masks`. This file puts them together:

1. **Rewards** (:meth:`PaintingAgent.reward`): R = sigma R_m + eta R_focus (Eq. 6.4-6.8), or
   LearningToPaint's WGAN reward and a plain L2 reward as baselines.
2. **The method** (Eq. 6.9): the actor (ResNet-18, BN) and critic (ResNet-18, weight norm) of a
   model-based DDPG; each training step is one batched environment step plus DDPG updates, each
   update trains the attention module (Eq. 6.3), the critic, the actor, then the target networks.
3. **Inference**: :func:`paint_with_actor`.

Every choice the thesis leaves open is a field of :class:`PaintingAgentConfig`; docs/painting.md
lists each deviation and the option that controls it.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn.functional as F

from condsynth.config import bounded
from condsynth.data.painting import PaintingDataConfig, build_painting_dataset
from condsynth.data.synth.strokes import STROKE_PARAMS
from condsynth.errors import ConfigError
from condsynth.losses.gan import gradient_penalty
from condsynth.losses.reconstruction import MaskedRecon
from condsynth.models.base import FrozenRef, Method
from condsynth.models.painting.analytic_renderer import ANALYTIC, AnalyticRenderer
from condsynth.models.painting.attention import AttentionModule, attention_loss
from condsynth.models.painting.env import ReplayBuffer, TargetStore, composite, paint_bundle, step_canvas
from condsynth.models.painting.feature_masks import FeatureMasks
from condsynth.models.painting.imitation import matched_stroke_loss, sample_demo_strokes
from condsynth.models.painting.renderer import RendererMethod
from condsynth.models.painting.spatial_actor import SpatialActor
from condsynth.nn.blocks import coord_planes, resize, soft_update
from condsynth.nn.discriminators import LTPCritic
from condsynth.nn.resnet import ResNet18

# =============================================================================================
# The method: model-based DDPG with the attention module and the thesis's rewards (Eq. 6.4-6.9)
# =============================================================================================

@dataclass
class PaintingAgentConfig:
    # environment
    size: int = bounded(128, 8, 4096)                     # canvas (Sec. 6.4.1)
    focus_size: int = bounded(64, 4, 4096)                # attention / focus-reward resolution
    bundle: int = bounded(5, 1, 64)                     # k strokes per action
    max_step: int = bounded(80, 1, 1000000)                  # T_max: 80 steps = 400 strokes (LTP CelebA default: 40)
    # the frozen renderer H_r: a painting_renderer run, checkpoint or export, or a bundled name;
    # "analytic": the analytic renderer (models/painting/analytic_renderer.py), nothing to load
    renderer: str = "painting-renderer"
    renderer_segments: int = bounded(12, 1, 100)         # capsule pieces of the analytic renderer's soft version
    renderer_edge: float = bounded(0.4, 0.05, 20.0)      # its sigmoid edge (2x-canvas px); wider: gradients reach further
    # networks
    attention: bool = True              # attention module + focused canvas in the actor's input
    actor_width: int = bounded(64, 1, 1024)               # ResNet-18 first-stage width (paper: 64)
    # fc: the thesis's ResNet-18 + linear layer; spatial: the same trunk, each stroke's start point
    # the soft-argmax of its own heat map (models/painting/spatial_actor.py, our deviation)
    actor_head: Literal["fc", "spatial"] = "fc"
    critic_width: int = bounded(64, 1, 1024)
    net_input_size: int = bounded(128, 8, 4096)           # actor/critic input resolution (paper: 128)
    attention_width: int = bounded(64, 1, 1024)
    attention_unet_width: int = bounded(32, 1, 1024)
    attention_res_blocks: int = bounded(4, 0, 64)
    feature_mask_input: bool = True     # f^17_mask as an actor/critic input channel
    # rewards  R = sigma R_m + eta R_focus   (Eq. 6.8)
    reward: Literal["thesis", "wgan", "l2"] = "thesis"   # wgan: LearningToPaint's baseline reward
    feature_mask: Literal["vgg", "saliency", "ground_truth", "none"] = "vgg"
    vgg_weights: Optional[str] = None
    vgg_weight: float = bounded(1.0, 0, 1000000.0)             # weight of L_vgg inside L_m (0 disables, no VGG needed)
    use_focus_reward: bool = True
    focus_reward: Literal["neg", "fg_improve"] = "neg"   # Eq. 6.7, see reward()
    sigma: float = 2.0
    eta: float = 1.0
    trunc_lambda: float = bounded(1.0, 0, 1000000.0)           # lambda of the truncated L1
    reward_scale: float = 1.0           # multiplies R (LTP's L2 reward is O(1e-3) per step too)
    # DDPG (LTP's values)
    gamma: float = bounded(0.95 ** 5, 0, 1)
    tau: float = bounded(0.001, 0, 1)
    actor_lr: float = bounded(1e-3, 0, 10)
    critic_lr: float = bounded(3e-4, 0, 10)
    attention_lr: float = bounded(2e-4, 0, 10)
    gan_lr: float = bounded(3e-4, 0, 10)
    replay_capacity: int = bounded(64_000, 1, 100000000)       # 800 x max_step
    batch_size: int = bounded(96, 1, 65536)
    warmup: int = bounded(400, 0, 1000000000)                   # env steps (of the whole batch of envs) before updates
    updates_per_step: float = bounded(0.25, 0, 1000)      # LTP: 10 updates per 40-step episode
    noise_std: float = bounded(0.0, 0, 10)              # LTP: no exploration noise
    joint_attention: bool = True        # thesis: attention module and actor optimised jointly
                                        # (the actor's loss also trains the attention module
                                        # through the focused canvas); false: L_rec only (spec [R])
    # how the actor learns (docs/painting.md, "trainers"): ddpg is the thesis (Eq. 6.9); greedy
    # is gamma = 0 without a critic, the actor's loss -R(s, mu(s)) through the renderer; rollout
    # unrolls rollout_steps bundles from replayed states and takes -sum gamma^h R_h
    trainer: Literal["ddpg", "greedy", "rollout"] = "ddpg"
    rollout_steps: int = bounded(4, 1, 100)
    # R_m and R_focus divided per image by their value on a blank canvas (initial, LTP's ini_dis)
    # or before the step (current: the relative improvement, so late steps weigh as much as early ones)
    reward_norm: Literal["none", "initial", "current"] = "none"
    # colour of a stroke: the actor's, or the least-squares colour of the target under its alpha
    color: Literal["actor", "closed_form"] = "actor"
    # > 0: the actor's last-layer bias starts the strokes at this thickness z and opacity v
    init_thickness: float = bounded(0.0, 0, 1)
    init_opacity: float = bounded(0.9, 0.01, 0.99)
    # coarse to fine: [start, end] caps thickness, z = sigmoid(.) * lerp(start, end, t/T); [] = off
    thickness_schedule: list[float] = bounded(min=0, max=1, factory=list)
    # greedy / rollout trainers: loss = reward_weight * (-R) + imitation_weight * L_recover, where
    # L_recover teaches the actor to recover k random strokes painted onto a replayed canvas
    # (models/painting/imitation.py; our addition, 0 = the thesis's reward alone)
    reward_weight: float = bounded(1.0, 0, 1000.0)
    # R_m is also measured on the canvas and target averaged over s x s blocks, for each s here,
    # and the terms averaged: a stroke then feels the error of a wide neighbourhood, not only
    # under its own soft edge ([] = the thesis's R_m at full resolution only; our addition)
    reward_scales: list[int] = bounded(min=2, max=64, factory=list)
    imitation_weight: float = bounded(0.0, 0, 1000.0)


class PaintingAgent(Method):
    """Model-based DDPG painter (Eq. 6.9) with the attention module and the thesis's rewards.

    Inference needs the actor, the attention module and the frozen renderer; training adds the
    critic, the target networks and (for the WGAN reward) LTP's discriminator. The replay buffer,
    the stored episode targets, the running episode and the counters are method state, saved in
    every checkpoint (``extra_state``), so ``--resume`` continues where the run stopped."""

    name = "painting_agent"
    ModelConfig = PaintingAgentConfig
    DataConfig = PaintingDataConfig
    inference_networks = ("actor", "attention")
    pipeline = "condsynth.pipelines.paint:PaintingPipeline"

    def __init__(self, model_cfg: PaintingAgentConfig, data_cfg):
        super().__init__(model_cfg, data_cfg)
        c = model_cfg
        if getattr(data_cfg, "size", c.size) != c.size:
            raise ConfigError(f"data.size ({data_cfg.size}) must equal model.size ({c.size})")
        self.renderer = None            # frozen H_r, attached by the engine or a pipeline
        self.masks = FeatureMasks(c.feature_mask if c.reward != "wgan" else "none", c.vgg_weights,
                                  vgg_perceptual=False)
        # min(|x - y|, lambda) * f_mask, averaged per image: L_m's first term (Eq. 6.4) and L_focus (Eq. 6.6)
        self.truncated_l1 = MaskedRecon("l1", "per_sample", truncate=c.trunc_lambda, normalize="elements")
        if c.actor_head == "spatial":         # our deviation: where from a heat map (spatial_actor.py)
            self.actor = SpatialActor(self.actor_channels(), c.bundle, c.actor_width)
            if c.init_thickness > 0:
                self.actor.init_stroke_bias(c.init_thickness, c.init_opacity)
        else:                                   # the thesis: LTP's ResNet-18 -> fc
            self.actor = ResNet18(self.actor_channels(), c.bundle * STROKE_PARAMS, c.actor_width, norm=True)
            if c.init_thickness > 0:
                init_stroke_bias(self.actor.fc, c.bundle, c.init_thickness, c.init_opacity)
        if c.renderer == ANALYTIC:
            self.renderer = AnalyticRenderer(size=c.size, segments=c.renderer_segments, edge=c.renderer_edge)
        self.attention = AttentionModule(c.attention_width, c.attention_unet_width, c.attention_res_blocks,
                                         size=c.focus_size) if c.attention else None
        self.register_buffer("coords", coord_planes(c.net_input_size))
        self.replay = self.store = None
        self.env = None
        self.updates_credit = 0.0
        self.env_steps = 0
        self.episodes = 0

    def setup_training(self):
        c = self.model_cfg
        if c.reward == "thesis" and c.vgg_weight > 0 and self.masks.vgg is None:
            # L_vgg needs the VGG-16 features, which the "vgg" feature masks have built already
            self.masks = FeatureMasks(self.masks.kind, c.vgg_weights, vgg_perceptual=True)
        self.critic = self.actor_target = self.critic_target = None
        if c.trainer == "ddpg":           # greedy and rollout learn without a critic
            self.critic = ResNet18(self.critic_channels(), 1, c.critic_width, norm=False)
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
            self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.disc = LTPCritic() if c.reward == "wgan" else None
        self.disc_target = copy.deepcopy(self.disc).requires_grad_(False) if self.disc is not None else None

    def frozen_networks(self):
        if self.model_cfg.renderer == ANALYTIC:
            return {}
        return {"renderer": FrozenRef(self.model_cfg.renderer, RendererMethod.name)}

    def attach_frozen(self, name, net):
        if name == "renderer" and net.cfg.size != self.model_cfg.size:
            raise ConfigError(f"model.size is {self.model_cfg.size} but the renderer {self.model_cfg.renderer} "
                              f"draws {net.cfg.size}x{net.cfg.size} strokes")
        super().attach_frozen(name, net)

    # ---- method state (replay buffer, episode targets, the running episode, counters)
    def extra_state(self) -> dict:
        state = {"env_steps": self.env_steps, "updates_credit": self.updates_credit, "episodes": self.episodes}
        if self.replay is not None:
            state.update(replay=self.replay.state_dict(), store=self.store.state_dict(), env=dict(self.env))
        return state

    def load_extra_state(self, state: dict) -> None:
        c = self.model_cfg
        self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
        self.updates_credit = float(state["updates_credit"])
        if "replay" in state:
            self.replay = ReplayBuffer(c.replay_capacity, c.size, c.bundle)
            self.replay.load_state_dict(state["replay"])
            self.store = TargetStore(int(state["store"]["slots"]))
            self.store.load_state_dict(state["store"])
            dev = self.coords.device
            self.env = {k: v.to(dev) if torch.is_tensor(v) and k != "slots" else v for k, v in state["env"].items()}
            self.env["t"] = int(self.env["t"])

    # ---- shapes of the state
    @property
    def _mask_input(self) -> bool:
        return self.model_cfg.feature_mask_input and self.model_cfg.reward != "wgan"

    def actor_channels(self) -> int:
        n = 9                                   # C_t, I, t/T, coords (LTP)
        if self.model_cfg.attention:
            n += 3                              # up(F_t)
        return n + int(self._mask_input)        # f^17_mask

    def critic_channels(self) -> int:
        return 12 + int(self._mask_input)       # C_t, C_t+1, I, t/T, coords (+ f^17_mask)

    def networks(self):
        nets = {"actor": self.actor}
        if self.critic is not None:
            nets.update(critic=self.critic, actor_target=self.actor_target, critic_target=self.critic_target)
        if self.attention is not None:
            nets["attention"] = self.attention
        if self.disc is not None:
            nets["disc"] = self.disc
            nets["disc_target"] = self.disc_target
        return nets

    def configure_optimizers(self, train_cfg):
        c = self.model_cfg
        opts = {"actor": torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr)}
        if self.critic is not None:
            opts["critic"] = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr)
        if self.attention is not None:
            opts["attention"] = torch.optim.Adam(self.attention.parameters(), lr=c.attention_lr)
        if self.disc is not None:
            opts["disc"] = torch.optim.Adam(self.disc.parameters(), lr=c.gan_lr, betas=(0.5, 0.999))
        return opts

    def build_dataset(self, split: str):
        return build_painting_dataset(self.data_cfg, split)

    # ---- state tensors
    @contextlib.contextmanager
    def _frozen_attention(self):
        """The attention module with frozen weights and eval-mode BatchNorm, restored afterwards
        (gradients still flow to its input)."""
        att = self.attention
        was, flags = att.training, [p.requires_grad for p in att.parameters()]
        att.eval().requires_grad_(False)
        try:
            yield att
        finally:
            for p, flag in zip(att.parameters(), flags):
                p.requires_grad_(flag)
            att.train(was)

    def focus(self, canvas):
        """F_t = Att(C_t) as a state input: no gradient."""
        if self.attention is None:
            return None
        with torch.no_grad(), self._frozen_attention() as att:
            return att(canvas)

    def _net_input(self, parts: list, tfrac: torch.Tensor) -> torch.Tensor:
        """The state channels at the networks' resolution, plus the t/T plane and CoordConv (LTP)."""
        x = resize(torch.cat(parts, 1), self.model_cfg.net_input_size)
        b, s = x.shape[0], x.shape[-1]
        return torch.cat([x, tfrac.view(b, 1, 1, 1).expand(b, 1, s, s), self.coords.expand(b, -1, -1, -1)], 1)

    def actor_input(self, canvas, target, fm17, tfrac, focus=None):
        parts = [canvas, target] + ([fm17] if self._mask_input else [])
        if self.model_cfg.attention:
            parts.append(resize(focus, canvas.shape[-2:]))
        return self._net_input(parts, tfrac)

    def critic_input(self, c0, c1, target, fm17, tfrac):
        return self._net_input([c0, c1, target] + ([fm17] if self._mask_input else []), tfrac)

    def act(self, actor, canvas, target, fm17, t, max_step=None, focus=None):
        tfrac = torch.as_tensor(t, dtype=canvas.dtype, device=canvas.device).expand(canvas.shape[0]) \
            / float(max_step or self.model_cfg.max_step)
        if focus is None:
            focus = self.focus(canvas)
        a = torch.sigmoid(actor(self.actor_input(canvas, target, fm17, tfrac, focus)))
        if self.model_cfg.thickness_schedule:
            cap = self.thickness_cap(tfrac)                                      # B
            mult = torch.ones(a.shape[0], self.model_cfg.bundle, STROKE_PARAMS, dtype=a.dtype, device=a.device)
            mult[:, :, 6] = mult[:, :, 8] = cap[:, None]
            a = (a.view_as(mult) * mult).view_as(a)
        return a

    def thickness_cap(self, tfrac: torch.Tensor) -> torch.Tensor:
        """The coarse-to-fine cap on z at episode fraction t/T (1 without a schedule)."""
        sched = self.model_cfg.thickness_schedule
        if not sched:
            return torch.ones_like(tfrac)
        if len(sched) != 2:
            raise ConfigError(f"model.thickness_schedule must be [start, end], got {list(sched)}")
        return sched[0] + (sched[1] - sched[0]) * tfrac.clamp(0, 1)

    def step(self, canvas, actions, target, k=None):
        """T(s, a) with this agent's renderer and colour rule: (C_t+1, alpha, a_c, actions painted)."""
        fit = target if self.model_cfg.color == "closed_form" else None
        return paint_bundle(self.renderer, canvas, actions, k or self.model_cfg.bundle, fit)

    # ---- rewards (Eq. 6.4-6.8), computed inside the graph
    def reward(self, c0, c1, alpha, cstroke, target, fm17, fm2, vgg_t, f0=None, f1=None, mask=None):
        """R(C_t, a_t) per image, and a dict of its parts for logging."""
        c = self.model_cfg
        if c.reward == "wgan":
            d = self.disc_target
            r = d(target, c1) - d(target, c0)                      # r = D'(I, C_{t+1}) - D'(I, C_t)
            return r * c.reward_scale, {"r_gan": r.mean()}
        norm = c.reward_norm != "none"           # divide by the value on a blank canvas or before the step
        blank = c.reward_norm == "initial"
        if c.reward == "l2":
            r = (c0 - target).pow(2).flatten(1).mean(1) - (c1 - target).pow(2).flatten(1).mean(1)
            if norm:
                r = r / ((target if blank else c0 - target).pow(2).flatten(1).mean(1) + 1e-6)
            return r * c.reward_scale, {"r_l2": r.mean()}
        r_m, parts = 0.0, {}
        for s in [1] + list(c.reward_scales):
            down = (lambda x: x) if s == 1 else (lambda x: F.avg_pool2d(x, s, ceil_mode=True))
            ts, ms = down(target), down(fm17)
            lm0 = self.truncated_l1(down(c0), ts, ms)              # Eq. 6.4, L_m(t)
            lm1 = self.truncated_l1(down(c1), ts, ms)              #          L_m(t+1)
            r_s = lm0 - lm1                                        # Eq. 6.5, R_m = L_m(t) - L_m(t+1)
            if norm:
                r_s = r_s / ((self.truncated_l1(torch.zeros_like(ts), ts, ms) if blank else lm0) + 1e-6)
            r_m = r_m + r_s / (1 + len(c.reward_scales))
            if s == 1:
                parts["l1_masked"] = lm1.mean()
        if c.vgg_weight > 0:
            pv0 = self.masks.perceptual(c0, vgg_t)
            pv1 = self.masks.perceptual(c1, vgg_t)
            r_m = r_m + c.vgg_weight * (pv0 - pv1)
            parts["l_vgg"] = pv1.mean()
        r = c.sigma * r_m                                          # Eq. 6.8, sigma * R_m
        parts["r_m"] = r_m.mean()
        if c.use_focus_reward and self.attention is not None:
            f0 = self.focus(c0) if f0 is None else f0              # F_t (detached)
            s = c.focus_size
            if c.focus_reward == "neg":
                # Eq. 6.6 with the strokes blended onto F_t; Eq. 6.7 read causally as
                # R_focus(t) = -L_focus(t) (spec 3.6: L_focus(t+1) would need the next action).
                f1 = self.focus(c1) if f1 is None else f1          # F_{t+1}
                b, k = alpha.shape[:2]
                a_small = resize(alpha.flatten(0, 1), s).view(b, k, 1, s, s)
                c_small = resize(cstroke.flatten(0, 1), s).view(b, k, 3, s, s)
                blend = composite(f0, a_small, c_small)            # B_t: strokes over F_t
                r_focus = -self.truncated_l1(blend, f1, fm2)       # Eq. 6.6
            else:
                # "fg_improve" (spec 3.6 variant b), in Eq. 6.7's difference form:
                # R_focus = D(t) - D(t+1), D = mean(min(|F - down(I * M)|, lambda) * f^2_mask); the
                # gradient reaches the action through Att(C_{t+1}) (module frozen in this pass).
                goal = resize(target * (mask if mask is not None else 1.0), s)
                if f1 is None:
                    with self._frozen_attention() as att:
                        f1 = att(c1)
                d0 = self.truncated_l1(f0, goal, fm2)
                r_focus = d0 - self.truncated_l1(f1, goal, fm2)
                if norm:
                    r_focus = r_focus / ((self.truncated_l1(torch.zeros_like(goal), goal, fm2) if blank else d0) + 1e-6)
            r = r + c.eta * r_focus                                # Eq. 6.8, + eta * R_focus
            parts["r_focus"] = r_focus.mean()
        return r * c.reward_scale, parts

    # ---- environment (one batched env step per training step)
    @torch.no_grad()
    def _reset(self, batch, device):
        c = self.model_cfg
        img = batch["image"].to(device)
        mask = batch["mask"].to(device)
        has = batch["has_mask"].to(device).float()
        b = img.shape[0]
        fm17, fm2 = self.masks.masks(img, mask, c.size, c.focus_size)
        if self.replay is None:
            self.replay = ReplayBuffer(c.replay_capacity, c.size, c.bundle)
            episodes_kept = c.replay_capacity // max(1, b * c.max_step) + 2
            self.store = TargetStore(episodes_kept * b)
        slots = torch.arange(b) + self.episodes * b
        self.store.put(slots, img, mask, has, fm17, fm2)
        self.env = {"canvas": torch.zeros_like(img), "target": img, "fm17": fm17, "t": 0, "slots": slots}
        self.episodes += 1

    @torch.no_grad()
    def _env_step(self):
        c, e = self.model_cfg, self.env
        was = self.actor.training
        self.actor.eval()
        a = self.act(self.actor, e["canvas"], e["target"], e["fm17"], e["t"])
        self.actor.train(was)
        if c.noise_std > 0:
            a = (a + c.noise_std * torch.randn_like(a)).clamp(0, 1)
        canvas, _, _, a = self.step(e["canvas"], a, e["target"])
        self.replay.add(e["canvas"], a, e["t"], e["slots"])
        e["canvas"] = canvas
        e["t"] += 1
        self.env_steps += 1

    def training_step(self, batch, ctx):
        """One batched environment step, then ``updates_per_step`` DDPG updates (after warm-up).

        The batch holds the targets of the next episode; it is used when an episode ends.
        """
        c = self.model_cfg
        if self.env is None or self.env["t"] >= c.max_step:
            self._reset(batch, ctx.device)
        self._env_step()
        logs = {}
        if self.env["t"] >= c.max_step:
            logs["env_l2"] = float((self.env["canvas"] - self.env["target"]).pow(2).mean())
        if self.env_steps < c.warmup:
            return logs
        self.updates_credit += c.updates_per_step
        while self.updates_credit >= 1.0:
            self.updates_credit -= 1.0
            logs.update(self.update(ctx))
        return logs

    def _gan_step(self, ctx, target, canvas):
        """WGAN-GP step of LTP's reward discriminator: real (I, I) vs fake (I, C), lambda_gp = 10,
        the penalty on the whole 6-channel interpolate; target D soft-updated with tau = 0.001."""
        d = ctx.nets["disc"]
        real, fake = d(target, target), d(target, canvas)
        gp = gradient_penalty(lambda x: d(x[:, :3], x[:, 3:]), torch.cat([target, target], 1),
                              torch.cat([target, canvas], 1))
        loss = fake.mean() - real.mean() + 10.0 * gp
        ctx.backward(loss)
        ctx.step("disc")
        soft_update(self.disc_target, self.disc, 0.001)
        return {"loss_disc": loss.detach()}

    def update(self, ctx):
        c = self.model_cfg
        dev = ctx.device
        c0, act, t, slot = self.replay.sample(c.batch_size)
        c0, act, t = c0.to(dev), act.to(dev), t.to(dev)
        img, mask, has, fm17, fm2 = self.store.get(slot, dev)
        logs = {}
        vgg_t = self.masks.perceptual_targets(img) if (c.reward == "thesis" and c.vgg_weight > 0) else None
        T = float(c.max_step)

        # 1. attention module, Eq. 6.3 (only images with a known foreground mask)
        if self.attention is not None and bool((has > 0).any()):
            sel = has > 0
            loss_att = attention_loss(ctx.nets["attention"], c0[sel], mask[sel])
            ctx.backward(loss_att)
            ctx.step("attention")
            logs["loss_attention"] = loss_att.detach()

        if c.trainer != "ddpg":
            return self._update_direct(ctx, c0, act, t, img, mask, fm17, fm2, vgg_t, logs)

        # 2. critic: y = R(s,a) + gamma (1 - d) [R(s',a') + V'(s', T(s',a'))]   (Eq. 6.9)
        with torch.no_grad():
            c1, al1, cs1 = step_canvas(self.renderer, c0, act, c.bundle)
        if self.disc is not None:
            with torch.enable_grad():
                logs.update(self._gan_step(ctx, img, c1))
        with torch.no_grad():
            f0, f1 = self.focus(c0), self.focus(c1)        # F_t, F_{t+1}, shared by the terms below
            r0, parts = self.reward(c0, c1, al1, cs1, img, fm17, fm2, vgg_t, f0, f1, mask)
            self.actor_target.eval()
            a1 = self.act(self.actor_target, c1, img, fm17, t + 1, focus=f1)
            c2, al2, cs2, _ = self.step(c1, a1, img)
            r1, _ = self.reward(c1, c2, al2, cs2, img, fm17, fm2, vgg_t, f1, None, mask)
            v1 = self.critic_target(self.critic_input(c1, c2, img, fm17, (t + 2).float() / T)).squeeze(1)
            done = (t + 1 >= c.max_step).float()
            y = r0 + c.gamma * (1 - done) * (r1 + v1)
        v0 = ctx.nets["critic"](self.critic_input(c0, c1, img, fm17, (t + 1).float() / T)).squeeze(1)
        loss_critic = F.mse_loss(r0 + v0, y)
        ctx.backward(loss_critic)
        ctx.step("critic")

        # 3. actor: maximise R(s, mu(s)) + V(s, T(s, mu(s))), through the frozen renderer
        self.critic.requires_grad_(False)
        joint = c.joint_attention and self.attention is not None
        # joint: actor gradients reach the module, through its DDP wrapper (averaged across ranks)
        f_act = ctx.nets["attention"](c0) if joint else f0
        a = self.act(ctx.nets["actor"], c0, img, fm17, t, focus=f_act)
        c1a, ala, csa, _ = self.step(c0, a, img)
        ra, _ = self.reward(c0, c1a, ala, csa, img, fm17, fm2, vgg_t, f0, None, mask)
        va = self.critic(self.critic_input(c0, c1a, img, fm17, (t + 1).float() / T)).squeeze(1)
        loss_actor = -(ra + va).mean()
        ctx.backward(loss_actor)
        ctx.step("actor")
        if joint:
            ctx.step("attention")
        self.critic.requires_grad_(True)

        # 4. soft target updates
        soft_update(self.actor_target, self.actor, c.tau)
        soft_update(self.critic_target, self.critic, c.tau)
        logs.update({"loss_critic": loss_critic.detach(), "loss_actor": loss_actor.detach(),
                     "reward": r0.mean(), "value": v0.detach().mean(), **{k: v.detach() for k, v in parts.items()}})
        return logs

    def _update_direct(self, ctx, c0, act, t, img, mask, fm17, fm2, vgg_t, logs):
        """Greedy (gamma = 0) and rollout updates: no critic; the actor's loss is -sum_h gamma^h R_h
        over ``rollout_steps`` bundles (1 for greedy) painted from the replayed state through the
        differentiable renderer, the reward of Eq. 6.4-6.8 itself."""
        c = self.model_cfg
        horizon = 1 if c.trainer == "greedy" else c.rollout_steps
        joint = c.joint_attention and self.attention is not None
        if self.disc is not None:            # LTP's reward: its WGAN-GP discriminator learns first
            with torch.no_grad():
                c1 = step_canvas(self.renderer, c0, act, c.bundle)[0]     # the replayed transition
            logs.update(self._gan_step(ctx, img, c1))
        canvas, total, parts = c0, 0.0, {}
        for h in range(horizon):
            f0 = self.focus(canvas)
            f_act = ctx.nets["attention"](canvas) if joint else f0
            a = self.act(ctx.nets["actor"], canvas, img, fm17, t + h, focus=f_act)
            c1, al, cs, _ = self.step(canvas, a, img)
            r, p = self.reward(canvas, c1, al, cs, img, fm17, fm2, vgg_t, f0, None, mask)
            alive = (t + h < c.max_step).to(r.dtype)           # no reward past the episode's end
            total = total + (c.gamma ** h) * alive * r
            parts = parts or p
            canvas = c1
        loss_actor = -total.mean() * c.reward_weight
        if c.imitation_weight > 0:
            loss_recover = self._recovery_loss(ctx, c0, t, mask)
            loss_actor = loss_actor + c.imitation_weight * loss_recover
            logs["loss_recover"] = loss_recover.detach()
        ctx.backward(loss_actor)
        ctx.step("actor")
        if joint:
            ctx.step("attention")
        logs.update({"loss_actor": loss_actor.detach(), **{k: v.detach() for k, v in parts.items()}})
        return logs

    def _recovery_loss(self, ctx, c0, t, mask):
        """L_recover (models/painting/imitation.py): paint k random strokes s* in random colours
        onto the replayed canvases (always visible, unlike the target's own colours on a canvas
        that already matches it), and score the actor's bundle for the state (C_t, T(C_t, s*), t)
        against s* under the best pairing."""
        c = self.model_cfg
        b = c0.shape[0]
        tfrac = t.to(c0.dtype) / float(c.max_step)
        cap = self.thickness_cap(tfrac)
        demo = sample_demo_strokes(b, c.bundle, cap)
        with torch.no_grad():
            goal = step_canvas(self.renderer, c0, demo.flatten(1), c.bundle)[0]
            fm17, _ = self.masks.masks(goal, mask, c.size, c.focus_size)
            focus = self.focus(c0)
        a = self.act(ctx.nets["actor"], c0, goal, fm17, t, focus=focus)
        return matched_stroke_loss(a.view(b, c.bundle, STROKE_PARAMS), demo.view(b, c.bundle, STROKE_PARAMS),
                                   cap, with_color=c.color == "actor")

    @torch.no_grad()
    def visuals(self, batch):
        img = batch["image"][:4].to(self.coords.device)
        was = self.training
        canvas = paint_with_actor(self, img, max(1, self.model_cfg.max_step) * self.model_cfg.bundle)[0]
        self.train(was)                           # paint_with_actor switches to eval mode
        return {"target": img * 2 - 1, "painting": canvas * 2 - 1}


# =============================================================================================
# Inference with a trained actor
# =============================================================================================

@torch.no_grad()
def paint_with_actor(agent: PaintingAgent, target: torch.Tensor, n_strokes: int, canvas=None,
                     callback=None, t_range=(0.0, 1.0)):
    """Paint ``B x 3 x S x S`` targets with the actor, ``n_strokes`` strokes each.

    The time input t/T runs over the requested budget (``ceil(n/k)`` steps), so the actor's
    coarse-to-fine schedule spans it. Returns (canvas, strokes ``B x n x 13``).
    """
    c = agent.model_cfg
    agent.eval()
    k = c.bundle
    steps = -(-n_strokes // k)
    canvas = torch.zeros_like(target) if canvas is None else canvas
    fm17, _ = agent.masks.masks(target, None, target.shape[-1], c.focus_size) \
        if agent.masks.kind != "ground_truth" else (torch.ones_like(target[:, :1]), None)
    out = []
    for t in range(steps):
        tt = (t_range[0] + (t_range[1] - t_range[0]) * t / steps) * c.max_step
        a = agent.act(agent.actor, canvas, target, fm17, tt)
        a = a.view(a.shape[0], k, STROKE_PARAMS)
        take = min(k, n_strokes - t * k)
        a = a[:, :take]
        canvas, _, _, a = agent.step(canvas, a.reshape(a.shape[0], -1), target, take)
        a = a.view(a.shape[0], take, STROKE_PARAMS)
        out.append(a)
        if callback is not None:
            callback(t * k + take, canvas, a)
    return canvas, torch.cat(out, 1)


def init_stroke_bias(fc: torch.nn.Linear, k: int, z: float, v: float, seed: int = 0) -> None:
    """Start the actor's strokes mid-sized, opaque and spread out, instead of a saturated
    thick-blob start: the thickness and opacity rows get small weights and a bias at ``z`` and
    ``v``; the k strokes of a bundle get their own start points (P0 drawn over the canvas, P2
    near it, P1 between), which the input-dependent weights then move."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = fc.weight.view(k, STROKE_PARAMS, -1)
        w[:, 6:10].mul_(0.1)
        b = torch.zeros(k, STROKE_PARAMS)
        p0 = torch.rand(k, 2, generator=g) * 0.8 + 0.1
        p2 = (p0 + (torch.rand(k, 2, generator=g) - 0.5) * 0.3).clamp(0.05, 0.95)
        b[:, 0:2], b[:, 4:6], b[:, 2:4] = torch.logit(p0), torch.logit(p2), torch.logit((p0 + p2) / 2)
        b[:, [6, 8]] = float(torch.logit(torch.tensor(z)))
        b[:, [7, 9]] = float(torch.logit(torch.tensor(v)))
        fc.bias.copy_(b.flatten())
