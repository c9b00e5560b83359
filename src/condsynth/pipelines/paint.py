"""Paint a picture with strokes: the Python API behind ``condsynth paint``.

    from condsynth.pipelines.paint import PaintingPipeline
    painter = PaintingPipeline.from_pretrained("painting")   # the agent; "painting-renderer": optimize only
    result = painter("photo.jpg", strokes=400)   # mode="agent" (default with an agent) | "optimize" | "agent+optimize"
    result.save("painting.png", animation="painting.gif", svg="strokes.svg", json_path="strokes.json")

Modes:

* ``agent``: the trained actor paints 5 strokes per step (thesis Sec. 6.3, inference as in LTP).
* ``optimize``: no agent; strokes are fitted group by group by gradient descent through the
  neural renderer (coarse to fine: groups start where the error is largest, with thickness
  shrinking group by group). A strong baseline, and slower.
* ``agent+optimize``: the agent's strokes, then every group refined by gradient descent.

``divide=d`` paints large images as LTP's "grid division": half the strokes on the whole image at
128x128, then the canvas is upsampled to ``d*128`` and each of the ``d x d`` patches gets its share
of the rest; the seams are smoothed with a 3x3 mean.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from condsynth.errors import UserError
from condsynth.io.images import save_image, to_rgb_uint8
from condsynth.io.strokes import save_strokes_json, save_svg
from condsynth.io.video import write_gif, write_video
from condsynth.models import painting as P
from condsynth.models.painting.optimize import optimize_strokes
from condsynth.nn.blocks import resize
from condsynth.pipelines.base import Pipeline, seeded
from condsynth.pipelines.paint_plan import PROPOSALS, pyramid_strokes, resize_hw, to_canvas

DEFAULT_AGENT = "painting"                  # bundled: the agent with the renderer it was trained with
DEFAULT_RENDERER = "painting-renderer"     # bundled: the best renderer, for optimisation mode
MAX_STROKES = 100_000
MODES = ("agent", "optimize", "agent+optimize")
LAYOUTS = ("pyramid", "patches")              # where the agent's strokes go (analytic renderer)
ACCEPT = ("improving", "all")                 # pyramid: draw only the strokes that lower the error, or all


# ------------------------------------------------------------------------------- result + writers

@dataclass
class PaintResult:
    canvas: np.ndarray                      # H x W x 3 float32 in [0, 1]
    target: np.ndarray                      # H x W x 3 float32 in [0, 1] (what was painted)
    strokes: np.ndarray                     # N x 13, thesis order, coordinates in [0, 1] of the canvas
    frames: list = field(default_factory=list)   # (strokes so far, H x W x 3 uint8)
    seconds: float = 0.0
    mode: str = "agent"
    exact: bool = False                     # drawn by the hard analytic discs: the SVG draws them exactly

    @property
    def mse(self) -> float:
        return float(np.mean((self.canvas - self.target) ** 2))

    def save(self, out, animation=None, svg=None, json_path=None, fps: int = 12) -> None:
        save_image(out, (np.clip(self.canvas, 0, 1) * 255 + 0.5).astype(np.uint8))
        if animation:
            save_animation(self.frames, animation, fps)
        if svg:
            h, w = self.canvas.shape[:2]
            save_svg(self.strokes, svg, w, h, discs=P.stroke_discs(self.strokes, h, w) if self.exact else None)
        if json_path:
            save_strokes_json(self.strokes, json_path, self.canvas.shape[1], self.canvas.shape[0], self.mode)


def save_animation(frames: list, path, fps: int = 12) -> Path:
    """Progress animation from ``(n, uint8 image)`` frames: GIF, or MP4 (H.264) through
    :mod:`condsynth.io.video`. The final canvas is held for a second; small canvases are enlarged
    (integer factor, up to 256 px) so that players show them at a useful size."""
    path = Path(path)
    ext = path.suffix.lower()
    if not frames:
        raise UserError(f"{path}: no frames to write")
    if ext not in (".gif", ".mp4"):
        raise UserError(f"{path}: animation must be .gif or .mp4")
    imgs = [f[1] for f in frames]
    imgs = imgs + [imgs[-1]] * max(1, fps)          # hold the final canvas for a second
    if ext == ".gif":
        return write_gif(path, imgs, fps)
    scale = max(1, 256 // max(imgs[0].shape[:2]))
    big = (np.kron(a, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else a for a in imgs)
    return write_video(path, big, fps, even="crop")


def contact_sheet(frames: list, path, columns: int = 8, every: int = 1) -> Path:
    """A grid of animation frames (for looking at the progression in one PNG)."""
    sel = frames[::every]
    h, w = sel[0][1].shape[:2]
    rows = math.ceil(len(sel) / columns)
    sheet = np.zeros((rows * (h + 2), columns * (w + 2), 3), np.uint8) + 255
    for i, (_, a) in enumerate(sel):
        r, c = divmod(i, columns)
        sheet[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = a
    return save_image(path, sheet)


# --------------------------------------------------------------------------------- inputs

def load_target(image, size: int) -> torch.Tensor:
    """Any image input (path, PIL, array, tensor; ``io.images.to_rgb_uint8``) -> ``1 x 3 x S x S`` in [0, 1]."""
    img = Image.fromarray(to_rgb_uint8(image))
    if max(img.size) > 4 * size:       # fast pre-shrink of huge photos, then a good resize
        img.thumbnail((4 * size, 4 * size), Image.BOX)
    img = img.resize((size, size), Image.BICUBIC if min(img.size) < size else Image.LANCZOS)
    return torch.from_numpy(np.array(img, np.float32) / 255.0).permute(2, 0, 1)[None]


MAX_SIDE = 4096                 # the longest output side --size accepts
DEFAULT_MAX_SIDE = 1024         # without --size: the photo's own long side, up to this


def output_size(photo_hw, size=None) -> tuple[int, int]:
    """(H, W) of the painting: the photo's aspect ratio, the long side ``size`` (default the
    photo's own, at most :data:`DEFAULT_MAX_SIDE`)."""
    h, w = photo_hw
    if size is None:
        long = min(max(h, w), DEFAULT_MAX_SIDE)
    else:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 8 <= size <= MAX_SIDE:
            raise UserError(f"size must be a whole number of pixels from 8 to {MAX_SIDE}, got {size!r}")
        long = int(size)
    k = long / max(h, w)
    return max(1, round(h * k)), max(1, round(w * k))


def load_photo(image, size=None) -> torch.Tensor:
    """Any image input -> ``1 x 3 x H x W`` in [0, 1] at :func:`output_size`, aspect ratio kept."""
    img = Image.fromarray(to_rgb_uint8(image))
    oh, ow = output_size((img.height, img.width), size)
    if max(img.size) > 4 * max(oh, ow):
        img.thumbnail((4 * ow, 4 * oh), Image.BOX)
    img = img.resize((ow, oh), Image.BICUBIC if img.width < ow else Image.LANCZOS)
    return torch.from_numpy(np.array(img, np.float32) / 255.0).permute(2, 0, 1)[None]


def check_strokes(n) -> int:
    try:
        ok = float(n) == int(n)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"stroke count must be a whole number, got {n!r}")
    n = int(n)
    if n <= 0:
        raise UserError(f"stroke count must be positive, got {n}")
    if n > MAX_STROKES:
        raise UserError(f"stroke count {n} is above the limit of {MAX_STROKES}")
    return n


# ---------------------------------------------------------------------------------- painter

def _strokes_to_global(strokes: torch.Tensor, i: int, j: int, d: int) -> torch.Tensor:
    """Patch-relative strokes of patch (row i, col j) of a d x d grid -> whole-canvas coordinates."""
    s = strokes.clone()
    s[..., 0:6:2] = (j + s[..., 0:6:2]) / d
    s[..., 1:6:2] = (i + s[..., 1:6:2]) / d
    s[..., 6:10:2] = s[..., 6:10:2] / d      # approximately the same pixel radius on the big canvas
    return s


def _grid(n: int, H: int, W: int, k: int = 5):
    """How ``n`` strokes are split: (global strokes, patch strokes, rows, columns): a quarter on
    the whole picture, the rest on a grid of about n/100 near-square patches (~75 strokes each)."""
    n_global = n if n < 4 * k else max(k, n // 4)
    n_rest = n - n_global
    if n_rest <= 0:
        return n_global, 0, 0, 0
    cells = max(1, round(n_rest / 75))
    gx = max(1, min(cells, W, round(math.sqrt(cells * W / H))))
    return n_global, n_rest, max(1, min(H, round(cells / gx))), gx


def rescale_thickness(strokes: torch.Tensor, ref_from: int, ref_to: int) -> torch.Tensor:
    """Strokes found on a canvas of long side ``ref_from``, with the same pixel-relative radius on
    one of long side ``ref_to``: radius 1 + (ref/2) z on the 2x canvas, scaled by ref_to / ref_from."""
    if ref_from == ref_to:
        return strokes
    s = strokes.clone()
    r = (1 + ref_from / 2 * s[..., 6:10:2]) * (ref_to / ref_from)
    s[..., 6:10:2] = ((r - 1) / (ref_to / 2)).clamp(0, 1)
    return s


class PaintingPipeline(Pipeline):
    """Paints images with a renderer and (optionally) a trained actor.

    Loads a ``painting_agent`` (actor + attention module + the frozen renderer it was trained
    with) or a ``painting_renderer`` alone (optimisation mode only), from an export, a run, a
    checkpoint or a bundled name: ``painting`` (the bundled agent) or ``painting-renderer`` (the
    best bundled renderer, the default for optimisation mode).
    """

    methods = ("painting_agent", "painting_renderer")

    plan_options: dict = {}      # keyword arguments of paint_plan.pyramid_plan (its defaults when empty)
    max_passes = 4               # with accept="improving": passes over the finest level for the budget left

    def check_method(self, method) -> None:
        self.agent = method if method.name == "painting_agent" else None
        self.renderer = method.renderer.eval().requires_grad_(False)
        # the agent's canvas is drawn with the exact hard discs of the output raster, so that each
        # stroke's closed-form colour is fitted to the alpha it is finally drawn with (the soft
        # edges' lower alpha on thin strokes made the colours overshoot into dark and light dots)
        self.draw_renderer = self.renderer
        if isinstance(self.renderer, P.AnalyticRenderer):
            self.draw_renderer = P.AnalyticRenderer(dataclasses.replace(self.renderer.cfg, soft=False))
        self.size = method.model_cfg.size

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, device: str | torch.device = "cpu",
                        use_ema: bool = True) -> PaintingPipeline:
        return super().from_pretrained(name_or_path or DEFAULT_AGENT, device=device, use_ema=use_ema)

    def __call__(self, image, strokes: int = 400, mode: Optional[str] = None, divide: int = 1,
                 record_every: int = 5, optimize_iters: int = 40, optimize_group: int = 20,
                 seed: int = 0, **kw) -> PaintResult:
        """Paint ``image`` with ``strokes`` strokes; see the module docstring for the modes."""
        return self.paint(image, strokes, mode, divide, record_every, optimize_iters, optimize_group, seed, **kw)

    @property
    def analytic(self) -> bool:
        """Whether the renderer draws any size (the analytic renderer): then the painting keeps
        the photo's aspect ratio and size (:meth:`paint_any_size`)."""
        return hasattr(self.renderer, "render")

    # -- painting
    def paint(self, image, strokes: int = 400, mode: Optional[str] = None, divide: int = 1,
              record_every: int = 5, optimize_iters: int = 40, optimize_group: int = 20,
              seed: int = 0, size: Optional[int] = None, refine: int = 0, detail: float = 0.5,
              layout: str = "pyramid", accept: str = "improving", proposals: int = 4) -> PaintResult:
        n = check_strokes(strokes)
        if mode is None:                    # the agent when there is one (it beats the mosaic, docs/painting.md)
            mode = "agent" if self.agent is not None else "optimize"
        if self.analytic and self.agent is not None:
            return self.paint_any_size(image, n, mode, size, refine, detail, record_every, optimize_group, seed,
                                       optimize_iters, layout, accept, proposals)
        if mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
        if mode != "optimize" and self.agent is None:  # a renderer-only checkpoint
            raise UserError(f"{self.source}: this checkpoint has no actor; use mode 'optimize'")
        if not (isinstance(divide, int) and 1 <= divide <= 16):
            raise UserError(f"divide must be an integer from 1 to 16, got {divide!r}")
        S = self.size
        target_big = load_target(image, S * divide).to(self.device)
        t0 = time.perf_counter()
        frames: list = []
        with torch.inference_mode(False), seeded(seed, self.device):
            if divide == 1:
                canvas, st = self._paint_one(target_big, n, mode, frames, record_every, optimize_iters,
                                             optimize_group, seed)
            else:
                canvas, st = self._paint_divided(target_big, n, divide, mode, frames, record_every,
                                                 optimize_iters, optimize_group, seed)
        secs = time.perf_counter() - t0
        return PaintResult(canvas[0].permute(1, 2, 0).numpy().astype(np.float32),
                           target_big[0].permute(1, 2, 0).numpy(), st[0].numpy(), frames, secs, mode)

    def paint_any_size(self, image, n: int, mode: str = "agent", size=None, refine: int = 0,
                       detail: float = 0.5, record_every: int = 5, group: int = 20, seed: int = 0,
                       iters: int = 40, layout: str = "pyramid", accept: str = "improving",
                       proposals: int = 4) -> PaintResult:
        """Paint at the photo's aspect ratio and ``size`` (long side) with the analytic renderer.

        A quarter of the strokes go on the whole picture (the actor sees it at its training
        size), the rest on a grid of patches about the training size's share of the budget
        (~75 strokes each), every stroke drawn on ONE full-size canvas, so a stroke that crosses
        a patch border just continues: no seams. ``detail`` in [0, 1] shares the patch strokes
        out by the remaining error weighted by the saliency mask (1) or evenly (0). Colours are
        the closed-form least-squares colours of the full-size target under each stroke. The
        output is the exact hard-disc raster of the strokes, which the SVG draws too.
        ``refine`` > 0: that many Adam steps per group of ``group`` strokes (agent+optimize).
        ``mode="optimize"``: no agent, ``optimize_strokes`` with ``iters`` steps per group."""
        if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or not 0 <= refine <= 10_000:
            raise UserError(f"refine must be a whole number from 0 to 10000, got {refine!r}")
        try:
            detail = float(detail)
        except (TypeError, ValueError):
            detail = float("nan")
        if not 0.0 <= detail <= 1.0:
            raise UserError(f"detail must be a number from 0 to 1, got {detail!r}")
        if layout not in LAYOUTS:
            raise UserError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        if accept not in ACCEPT:
            raise UserError(f"accept must be one of {', '.join(ACCEPT)}, got {accept!r}")
        if isinstance(proposals, bool) or proposals not in PROPOSALS:
            raise UserError(f"proposals must be one of {', '.join(map(str, PROPOSALS))}, got {proposals!r}")
        if mode == "agent+optimize" and refine == 0:
            refine = 10
        full = load_photo(image, size).to(self.device)
        H, W = full.shape[-2:]
        t0 = time.perf_counter()
        frames: list = []
        # strokes are found on a working canvas whose patches are about the agent's training size,
        # then drawn at the output size (their coordinates are fractions of the canvas)
        S = self.agent.model_cfg.size if self.agent is not None else 64
        gy, gx = _grid(n, H, W, self.agent.model_cfg.bundle if self.agent is not None else 5)[2:]
        lw = min(max(H, W), S * max(2, gx, gy))
        target = resize_hw(full, (max(1, round(H * lw / max(H, W))), max(1, round(W * lw / max(H, W)))))
        with torch.inference_mode(False), torch.no_grad(), seeded(seed, self.device):
            if mode == "optimize":
                with torch.enable_grad():
                    strokes = optimize_strokes(self.renderer, target, n, group=group, iters=iters, seed=seed)[1]
                refine = 0
            else:
                strokes = self._agent_strokes(target, n, detail, layout, accept, proposals)
            if refine > 0:
                with torch.enable_grad():
                    _, strokes = optimize_strokes(self.renderer, target, n, init=strokes, group=group, iters=refine,
                                                  seed=seed, lr=0.05)
            strokes = rescale_thickness(strokes.detach(), max(target.shape[-2:]), max(H, W))
            next_rec = [record_every]

            def rec(count, cv):
                if count >= next_rec[0] or count == n:
                    frames.append((count, (np.clip(cv.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)))
                    while next_rec[0] <= count:
                        next_rec[0] += record_every
            canvas = P.paint_hard(strokes[0], H, W, callback=rec)[None]
        secs = time.perf_counter() - t0
        return PaintResult(canvas[0].permute(1, 2, 0).numpy().astype(np.float32),
                           full[0].permute(1, 2, 0).cpu().numpy(), strokes[0].cpu().numpy(), frames, secs,
                           "agent+optimize" if refine else mode, exact=True)

    def _agent_strokes(self, target, n: int, detail: float, layout: str = "pyramid",
                       accept: str = "improving", proposals: int = 4) -> torch.Tensor:
        """The actor's ``1 x n x 13`` strokes for a ``1 x 3 x H x W`` target (full-canvas coordinates):
        ``layout`` "pyramid" (:meth:`_agent_strokes_pyramid`) or "patches" (a global pass with a
        quarter of the strokes, then one grid of patches; ``accept`` does not apply)."""
        if layout == "pyramid":
            return pyramid_strokes(self.agent, self.draw_renderer, target, n, detail, accept, proposals,
                                   self.plan_options, self.max_passes)
        agent = self.agent
        c = agent.model_cfg
        S, k = c.size, c.bundle
        H, W = target.shape[-2:]
        canvas = torch.zeros_like(target)
        n_global, n_rest, gy, gx = _grid(n, H, W, k)
        n_patch = gy * gx
        boxes = [(0, 0, H, W)]
        if n_patch:
            ys = [round(i * H / gy) for i in range(gy + 1)]
            xs = [round(j * W / gx) for j in range(gx + 1)]
            patches = [(ys[i], xs[j], ys[i + 1] - ys[i], xs[j + 1] - xs[j]) for i in range(gy) for j in range(gx)]
        out = []
        fit = c.color == "closed_form"

        def run(boxes, budgets, t_range):
            nonlocal canvas
            steps = -(-max(budgets) // k)
            views_t = torch.cat([resize_hw(target[..., y:y + h, x:x + w], S) for y, x, h, w in boxes])
            fm17, _ = agent.masks.masks(views_t, None, S, c.focus_size) \
                if agent.masks.kind != "ground_truth" else (torch.ones_like(views_t[:, :1]), None)
            for t in range(steps):
                views_c = torch.cat([resize_hw(canvas[..., y:y + h, x:x + w], S) for y, x, h, w in boxes])
                tt = (t_range[0] + (t_range[1] - t_range[0]) * t / steps) * c.max_step
                a = agent.act(agent.actor, views_c, views_t, fm17, tt).view(len(boxes), k, -1)
                for b, (y, x, h, w) in enumerate(boxes):
                    take = min(k, budgets[b] - t * k)
                    if take <= 0:
                        continue
                    st = to_canvas(a[b, :take], y, x, h, w, H, W, S)
                    canvas, _, _, st = P.paint_bundle(self.draw_renderer, canvas, st.reshape(1, -1), take,
                                                      target if fit else None)
                    out.append(st.view(take, -1))

        run(boxes, [n_global], (0.0, 0.5) if n_patch else (0.0, 1.0))
        if n_patch:
            err = (canvas - target).pow(2).mean(1, keepdim=True)
            sal = resize_hw(agent.masks.masks(resize_hw(target, S), None, S, c.focus_size)[0], (H, W)) \
                if detail > 0 else None
            weights = []
            for y, x, h, w in patches:
                e = float(err[..., y:y + h, x:x + w].mean())
                if sal is not None:
                    e = e * float(sal[..., y:y + h, x:x + w].mean() + 1e-3)
                weights.append(e)
            wsum = sum(weights) or 1.0
            share = [(1 - detail) / len(patches) + detail * wi / wsum for wi in weights]
            budgets = [int(n_rest * s_) for s_ in share]
            for i in np.argsort(share)[::-1][:n_rest - sum(budgets)]:
                budgets[int(i)] += 1
            run(patches, budgets, (0.5, 1.0))
        return torch.cat(out)[None]

    @staticmethod
    def _frame(canvas) -> np.ndarray:
        return (canvas[0].detach().clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)

    def _paint_one(self, target, n, mode, frames, record_every, iters, group, seed, canvas=None,
                   t_range=(0.0, 1.0), frame_fn=None):
        frame_fn = frame_fn or self._frame
        next_rec = [record_every]

        def rec(count, cv, _a):
            if count >= next_rec[0] or count == n:
                frames.append((count, frame_fn(cv)))
                while next_rec[0] <= count:
                    next_rec[0] += record_every

        if mode in ("agent", "agent+optimize"):
            start = canvas
            canvas, st = P.paint_with_actor(self.agent, target, n, canvas,
                                            rec if mode == "agent" else None, t_range)
            if mode == "agent+optimize":      # refine the agent's strokes, group by group, in order
                canvas, st = optimize_strokes(self.renderer, target, n, canvas=start, init=st, group=group,
                                              iters=iters, seed=seed, callback=rec)
        else:
            canvas, st = optimize_strokes(self.renderer, target, n, canvas, group=group, iters=iters,
                                          seed=seed, callback=rec)
        return canvas, st

    def _paint_divided(self, target_big, n, d, mode, frames, record_every, iters, group, seed):
        S = self.size
        n_global = max(1, n // 2)
        n_patch = (n - n_global) // (d * d)
        small = resize(target_big, S)
        up = lambda cv: (F.interpolate(cv, size=(S * d, S * d), mode="bilinear", align_corners=False)[0]  # noqa: E731
                         .clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        canvas, st = self._paint_one(small, n_global, mode, frames, record_every, iters, group, seed,
                                     t_range=(0.0, 0.5), frame_fn=lambda cv: up(cv))
        strokes = [_strokes_to_global(st, 0, 0, 1)]
        big = F.interpolate(canvas, size=(S * d, S * d), mode="bilinear", align_corners=False)
        if n_patch > 0:
            tiles_t = target_big.unfold(2, S, S).unfold(3, S, S)            # 1 x 3 x d x d x S x S
            tiles_c = big.unfold(2, S, S).unfold(3, S, S)
            tt = tiles_t.permute(0, 2, 3, 1, 4, 5).reshape(d * d, 3, S, S)
            tc = tiles_c.permute(0, 2, 3, 1, 4, 5).reshape(d * d, 3, S, S).contiguous()
            if mode == "optimize":
                outs = [optimize_strokes(self.renderer, tt[i:i + 1], n_patch, tc[i:i + 1], group=group,
                                         iters=iters, seed=seed + i) for i in range(d * d)]
                pc = torch.cat([o[0] for o in outs])
                ps = torch.cat([o[1] for o in outs])
            else:
                pc, ps = P.paint_with_actor(self.agent, tt, n_patch, tc, None, (0.5, 1.0))
            big = pc.view(1, d, d, 3, S, S).permute(0, 3, 1, 4, 2, 5).reshape(1, 3, d * S, d * S)
            big = smooth_seams(big, S, d)
            for i in range(d):
                for j in range(d):
                    strokes.append(_strokes_to_global(ps[i * d + j:i * d + j + 1], i, j, d))
            frames.append((n_global + n_patch * d * d, self._frame(big)))
        return big, torch.cat(strokes, 1)


def smooth_seams(img: torch.Tensor, tile: int, d: int, band: int = 4, k: int = 3, passes: int = 2) -> torch.Tensor:
    """Smooth the patch seams: ``passes`` k x k means, blended in with a weight that falls
    linearly from 1 at a seam to 0 at ``band`` pixels from it (LTP uses one 3x3 mean)."""
    blurred = img
    for _ in range(passes):
        blurred = F.avg_pool2d(F.pad(blurred, (k // 2,) * 4, mode="replicate"), k, 1)
    n = img.shape[-1]
    pos = torch.arange(n, dtype=img.dtype) + 0.5
    dist = torch.full((n,), float(band))
    for j in range(1, d):
        dist = torch.minimum(dist, (pos - j * tile).abs())
    w1 = (1 - dist / band).clamp(0, 1)
    w = torch.maximum(w1.view(1, 1, n, 1), w1.view(1, 1, 1, n))
    return w * blurred + (1 - w) * img


def default_checkpoint(mode: Optional[str]) -> str:
    """The bundled pipeline for a mode: the agent's for agent modes, the best renderer otherwise."""
    return DEFAULT_RENDERER if mode == "optimize" else DEFAULT_AGENT


def paint(image, strokes: int = 400, checkpoint: Optional[str] = None, **kwargs) -> PaintResult:
    """One-call API: ``paint("photo.jpg", 400).save("painting.png")``."""
    ckpt = checkpoint or default_checkpoint(kwargs.get("mode"))
    return PaintingPipeline.from_pretrained(ckpt).paint(image, strokes, **kwargs)


Painter = PaintingPipeline      # the older name
