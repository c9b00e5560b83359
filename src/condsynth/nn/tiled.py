"""Tiled inference that gives the whole-image result, for images larger than memory allows.

Instance normalisation uses statistics of the *whole* map, so running a generator on tiles and
stitching them does not give the whole-image output (each tile would be normalised by its own
mean and variance; spec-translation §2.8, pix2pixHD at 2048x1024). :func:`tiled_forward` walks
the network instead, one layer at a time ("layer-streamed"):

- every conv, transposed conv and pooling layer runs over output tiles of ``tile x tile``, each
  reading the input window (halo included) it needs; the layer itself pads the window, so
  reflect/zeros/replicate padding, stride, dilation and ``output_padding`` are exactly the layer's
  at the true image borders, and inside the image the halo holds the real neighbours;
- every ``InstanceNorm2d`` (instance statistics) first accumulates mean and variance over all
  tiles (in float64, Chan's parallel combination), then normalises tile by tile;
- pointwise layers (activations, ``Dropout`` in eval, ``BatchNorm2d`` in eval, ``Identity``) run
  on tiles, fused into the preceding layer's tile loop where they follow it in a ``Sequential``;
- containers are walked by registered handlers (:func:`register_handler`): ``Sequential`` (and
  :class:`~condsynth.nn.blocks.ConvNormAct`), :class:`~condsynth.nn.resnet_generator.ResBlock`
  (``x + body(x)``), :class:`~condsynth.nn.resnet_generator.ResnetGenerator`, and
  :func:`local_enhancer_handler` for pix2pixHD's local enhancer.

A module without a handler raises ``NotImplementedError`` naming its type: there is no silent
fallback to running it whole (which would defeat the memory bound) or on naive tiles (which would
be wrong). Lookup is by exact type, so a subclass with its own ``forward`` is never walked as its
parent; ``torch.nn.utils.parametrize`` classes (weight norm, spectral norm) count as their base.

Memory: the full maps between layers live on ``storage`` (default: the input's device), the tiles
are computed on the network's device. With ``storage="cpu"`` and a CUDA network, GPU memory holds
the weights and one layer's tile in and out, whatever the image size. On one device the saving is
what whole-image execution spends beyond two or three full maps (conv workspaces, the temporaries
of ``x + body(x)`` and of out-of-place norms); ``bench/bench_tiled.py`` measures it.

The result agrees with ``net(x)`` up to float rounding (the sums are ordered differently);
``tests/nn/test_tiled.py`` checks 1e-5 in float32.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from condsynth.nn.blocks import ConvNormAct
from condsynth.nn.resnet_generator import ResBlock, ResnetGenerator, _ResizeConv

Handler = Callable[["TiledExecutor", nn.Module, torch.Tensor, bool], torch.Tensor]
_HANDLERS: dict[type, Handler] = {}

# Layers that act on each pixel alone (in the modes given by _pointwise_ok); run on tiles.
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout, nn.Dropout2d,
              nn.BatchNorm2d, nn.InstanceNorm2d)


def register_handler(cls: type, handler: Handler | None = None):
    """Register how :func:`tiled_forward` walks a container class; usable as a decorator.

    ``handler(ex, module, x, owned) -> y``: compute ``module(x)`` with ``ex.run(child, x, owned)``
    for the children (and ``ex.add_`` for sums of full maps). ``owned`` says whether ``x`` may be
    overwritten (False for the caller's input or a map still needed, e.g. a skip connection). A
    handler returns ``x`` itself only if the module is an identity, otherwise a new map.
    """
    if handler is None:
        return lambda fn: register_handler(cls, fn) or fn
    _HANDLERS[cls] = handler
    return handler


def _base_type(module: nn.Module) -> type:
    cls = type(module)
    if parametrize.is_parametrized(module):          # ParametrizedConv2d -> Conv2d
        cls = cls.__bases__[0]
    return cls


def _spans(size: int, tile: int) -> list[tuple[int, int]]:
    return [(a, min(a + tile, size)) for a in range(0, size, tile)]


def _window_params(m: nn.Module) -> tuple[tuple[int, int], ...]:
    """Per spatial dim (H, W): (kernel extent, stride, left padding, right padding, ceil_mode)."""
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    k, s = pair(m.kernel_size), pair(m.stride if m.stride is not None else m.kernel_size)
    d = pair(getattr(m, "dilation", 1))
    ext = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
    if isinstance(m, nn.Conv2d) and isinstance(m.padding, str):
        if m.padding == "valid":
            pads = ((0, 0), (0, 0))
        else:                                        # "same": the extra pixel goes right/bottom, as in torch
            pads = tuple(((e - 1) // 2, e - 1 - (e - 1) // 2) for e in ext)
    else:
        pads = tuple((pi, pi) for pi in pair(m.padding))
    ceil = bool(getattr(m, "ceil_mode", False))
    return tuple((ext[i], s[i], pads[i][0], pads[i][1], ceil) for i in range(2))


def _out_size(n: int, ext: int, s: int, pl: int, pr: int, ceil: bool) -> int:
    span = n + pl + pr - ext
    if span < 0:
        raise ValueError(f"input side {n} is smaller than the kernel extent {ext}")
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + pl:                      # torch: the last window must start inside the input
        out -= 1
    return out


def _input_window(o0: int, o1: int, n: int, ext: int, s: int, pl: int) -> tuple[int, int, int]:
    """Input rows [lo, hi) for output rows [o0, o1), and the local output index of o0.

    ``lo`` is a multiple of the stride, so the layer run on ``x[lo:hi]`` (with its own padding)
    puts its windows on the same grid as on the whole input; windows that would read the layer's
    padding at a cut inside the image are not among the kept ones."""
    lo = max(0, ((o0 * s - pl) // s) * s)
    hi = min(n, (o1 - 1) * s - pl + ext)
    return lo, hi, o0 - lo // s


class TiledExecutor:
    """Runs modules layer by layer: full maps on ``storage``, tiles computed on ``compute``."""

    def __init__(self, tile: int, compute: torch.device, storage: torch.device):
        if int(tile) < 1:
            raise ValueError(f"tile must be a positive number of pixels, got {tile}")
        self.tile, self.compute, self.storage = int(tile), compute, storage

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _tiles(self, h: int, w: int, stride: tuple[int, int] = (1, 1)):
        """Output tiles; a layer with stride s gets ``tile // s`` output rows per tile, so that its input
        window (what a tile step holds, with the output) stays about ``tile`` wide."""
        for r in _spans(h, max(1, self.tile // stride[0])):
            for c in _spans(w, max(1, self.tile // stride[1])):
                yield r, c

    def _load(self, x: torch.Tensor, rows, cols, fresh: bool = False) -> torch.Tensor:
        t = x[:, :, rows[0]:rows[1], cols[0]:cols[1]]
        if t.device != self.compute:
            return t.to(self.compute)
        return t.clone() if fresh else t

    def _store(self, out: torch.Tensor | None, t: torch.Tensor, rows, cols, shape) -> torch.Tensor:
        if out is None:
            out = torch.empty(shape, dtype=t.dtype, device=self.storage)
        dst = out[:, :, rows[0]:rows[1], cols[0]:cols[1]]
        if dst.data_ptr() != t.data_ptr():
            dst.copy_(t)
        return out

    @staticmethod
    def _apply(post: list[nn.Module], t: torch.Tensor) -> torch.Tensor:
        for m in post:
            t = m(t)
        return t

    def add_(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a += b`` for two full maps (on ``storage``, where both live)."""
        return a.add_(b)

    # -- dispatch ------------------------------------------------------------------------------------------------
    @staticmethod
    def _check_hooks(module: nn.Module) -> None:
        if module._forward_hooks or module._forward_pre_hooks:
            raise NotImplementedError(f"tiled_forward: {type(module).__name__} has forward hooks, which running "
                                      f"it on tiles would call once per tile")

    def run(self, module: nn.Module, x: torch.Tensor, owned: bool = False) -> torch.Tensor:
        """``module(x)`` for a full map ``x`` on ``storage``; ``owned``: ``x`` may be overwritten."""
        self._check_hooks(module)
        cls = _base_type(module)
        if cls in _HANDLERS:
            return _HANDLERS[cls](self, module, x, owned)
        return self.leaf(module, x, owned, [])

    def leaf(self, m: nn.Module, x: torch.Tensor, owned: bool, post: list[nn.Module]) -> torch.Tensor:
        """One layer, with the pointwise layers ``post`` applied to its tiles before they are stored."""
        self._check_hooks(m)
        for p in post:
            self._check_pointwise(p)
        cls = _base_type(m)
        if cls in (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d):
            return self.windowed(m, x, post)
        if cls is nn.ConvTranspose2d:
            return self.transposed(m, x, post)
        if cls is nn.InstanceNorm2d and not (m.track_running_stats and not m.training):
            return self.instance_norm(m, x, owned, post)
        if cls in _POINTWISE:
            self._check_pointwise(m)
            return self.pointwise([m, *post], x, owned)
        raise NotImplementedError(f"tiled_forward has no handler for {cls.__module__}.{cls.__qualname__}; "
                                  f"register one with condsynth.nn.tiled.register_handler")

    @staticmethod
    def _check_pointwise(m: nn.Module) -> None:
        if isinstance(m, (nn.Dropout, nn.Dropout2d)) and m.training and m.p > 0:
            raise NotImplementedError(f"tiled_forward: {type(m).__name__} in training mode (tiles would draw "
                                      f"other noise than the whole image); call net.eval()")
        if isinstance(m, nn.BatchNorm2d) and (m.training or not m.track_running_stats):
            raise NotImplementedError("tiled_forward: BatchNorm2d with batch statistics (training mode or no "
                                      "running stats); call net.eval()")

    def is_pointwise(self, m: nn.Module) -> bool:
        cls = _base_type(m)
        if cls not in _POINTWISE or m._forward_hooks or m._forward_pre_hooks:
            return False
        return cls is not nn.InstanceNorm2d or (m.track_running_stats and not m.training)

    # -- layers --------------------------------------------------------------------------------------------------
    def pointwise(self, mods: list[nn.Module], x: torch.Tensor, owned: bool) -> torch.Tensor:
        if all(_base_type(m) is nn.Identity for m in mods):
            return x
        for m in mods:
            self._check_pointwise(m)
        out = x if owned else None
        for rows, cols in self._tiles(*x.shape[-2:]):
            t = self._apply(mods, self._load(x, rows, cols, fresh=not owned))
            out = self._store(out, t, rows, cols, x.shape)
        return out

    def windowed(self, m: nn.Module, x: torch.Tensor, post: list[nn.Module]) -> torch.Tensor:
        """Conv2d / MaxPool2d / AvgPool2d: the layer itself on each output tile's input window."""
        (eh, sh, plh, prh, ch), (ew, sw, plw, prw, cw) = _window_params(m)
        n, _, h, w = x.shape
        ho, wo = _out_size(h, eh, sh, plh, prh, ch), _out_size(w, ew, sw, plw, prw, cw)
        out = None
        for rows, cols in self._tiles(ho, wo, (sh, sw)):
            r0, r1, jr = _input_window(*rows, h, eh, sh, plh)
            c0, c1, jc = _input_window(*cols, w, ew, sw, plw)
            y = m(self._load(x, (r0, r1), (c0, c1)))
            t = self._apply(post, y[:, :, jr:jr + rows[1] - rows[0], jc:jc + cols[1] - cols[0]])
            out = self._store(out, t, rows, cols, (n, t.shape[1], ho, wo))
        return out

    def transposed(self, m: nn.ConvTranspose2d, x: torch.Tensor, post: list[nn.Module]) -> torch.Tensor:
        """ConvTranspose2d per output tile: input pixel i feeds outputs i*s - p + j*d, j < k; each tile
        takes every input pixel that feeds it, with no padding, and places the result."""
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise NotImplementedError(f"tiled_forward: ConvTranspose2d with padding {m.padding!r} / "
                                      f"{m.padding_mode!r}")
        n, _, h, w = x.shape
        k, s, p, d, op = m.kernel_size, m.stride, m.padding, m.dilation, m.output_padding
        size = [(n_ - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n_ in enumerate((h, w))]
        weight = m.weight.to(self.compute)
        bias = None if m.bias is None else m.bias.to(self.compute).view(1, -1, 1, 1)
        out = None
        for rows, cols in self._tiles(*size):
            src, place = [], []
            for i, ((o0, o1), n_) in enumerate(zip((rows, cols), (h, w))):
                i0 = max(0, -(-(o0 + p[i] - d[i] * (k[i] - 1)) // s[i]))
                i1 = min(n_ - 1, (o1 - 1 + p[i]) // s[i])
                src.append((i0, i1 + 1))
                # local output q is output position i0*s - p + q
                place.append(o0 - (i0 * s[i] - p[i]))
            tile_shape = (n, m.out_channels, rows[1] - rows[0], cols[1] - cols[0])
            t = torch.zeros(tile_shape, dtype=weight.dtype, device=self.compute)
            if src[0][1] > src[0][0] and src[1][1] > src[1][0]:
                y = F.conv_transpose2d(self._load(x, *src), weight, None, s, 0, 0, m.groups, d)
                (a, b), (c, e) = [(max(0, -q), min(y.shape[2 + i] - q, tile_shape[2 + i]) - max(0, -q))
                                  for i, q in enumerate(place)]
                if b > 0 and e > 0:
                    t[:, :, a:a + b, c:c + e] = y[:, :, place[0] + a:place[0] + a + b, place[1] + c:place[1] + c + e]
            if bias is not None:
                t += bias
            out = self._store(out, self._apply(post, t), rows, cols, (n, t.shape[1], *size))
        return out

    def instance_norm(self, m: nn.InstanceNorm2d, x: torch.Tensor, owned: bool,
                      post: list[nn.Module]) -> torch.Tensor:
        """Mean and biased variance over the whole map (per-tile moments, combined in float64 by
        Chan's formula, so the tile count adds no cancellation error), then ``(x - mean) / sqrt(var + eps)`` (x weight + bias if affine) tile by tile."""
        n, c, h, w = x.shape
        count = torch.zeros((), dtype=torch.float64, device=self.compute)
        mean = torch.zeros(n, c, dtype=torch.float64, device=self.compute)
        m2 = torch.zeros_like(mean)
        for rows, cols in self._tiles(h, w):
            t = self._load(x, rows, cols)
            nt = t.shape[2] * t.shape[3]
            var_t, mean_t = (v.to(torch.float64) for v in torch.var_mean(t, dim=(2, 3), correction=0))
            delta = mean_t - mean
            total = count + nt
            mean = mean + delta * (nt / total)
            m2 = m2 + var_t * nt + delta.square() * (count * nt / total)
            count = total
        scale = (m2 / count + m.eps).rsqrt()
        shift = -mean * scale
        if m.affine:
            scale = scale * m.weight.to(self.compute, torch.float64)
            shift = shift * m.weight.to(self.compute, torch.float64) + m.bias.to(self.compute, torch.float64)
        scale, shift = scale.to(x.dtype)[..., None, None], shift.to(x.dtype)[..., None, None]
        out = x if owned else None
        for rows, cols in self._tiles(h, w):
            t = torch.addcmul(shift, self._load(x, rows, cols), scale)
            out = self._store(out, self._apply(post, t), rows, cols, x.shape)
        return out


# -- containers ----------------------------------------------------------------------------------------------------
def run_chain(ex: TiledExecutor, mods, x: torch.Tensor, owned: bool) -> torch.Tensor:
    """``mods`` applied in order; the pointwise layers after a leaf are fused into its tile loop.

    Only this frame holds the current map, so each map is freed as soon as the next exists (a
    caller that kept a reference while a chain runs would hold one more full map)."""
    mods = list(mods)
    i = 0
    while i < len(mods):
        m = mods[i]
        j = i + 1
        if _base_type(m) in _HANDLERS:
            y = ex.run(m, x, owned)
        else:
            while j < len(mods) and ex.is_pointwise(mods[j]):
                j += 1
            y = ex.leaf(m, x, owned, mods[i + 1:j])
        owned = owned if y is x else True
        x, i = y, j
        del y
    return x


def sequential_handler(ex: TiledExecutor, seq: nn.Sequential, x: torch.Tensor, owned: bool) -> torch.Tensor:
    return run_chain(ex, seq, x, owned)


def resblock_handler(ex: TiledExecutor, block: ResBlock, x: torch.Tensor, owned: bool) -> torch.Tensor:
    h = ex.run(block.body, x, owned=False)           # x is still needed for the skip
    if h is x:
        h = x.clone()
    return ex.add_(h, x)


def resnet_last(ex: TiledExecutor, net: ResnetGenerator, x: torch.Tensor, owned: bool = False,
                bottleneck: list | None = None) -> torch.Tensor:
    """The ``ngf``-wide "last" map of a ResnetGenerator (before its output layer); with
    ``bottleneck`` a list, the residual blocks' output is appended to it."""
    encode = [net.stem, *net.down, *net.blocks]
    if bottleneck is None:
        return run_chain(ex, [*encode, *net.up], x, owned)
    h = run_chain(ex, encode, x, owned)
    bottleneck.append(h)
    return run_chain(ex, net.up, h, owned=False)


def resnet_handler(ex: TiledExecutor, net: ResnetGenerator, x: torch.Tensor, owned: bool):
    if net.return_features:
        keep: list = []
        last = resnet_last(ex, net, x, owned, bottleneck=keep)
        return ex.run(net.out, last, owned=False), {"bottleneck": keep[0], "last": last}
    return run_chain(ex, [net.stem, *net.down, *net.blocks, *net.up, *net.out], x, owned)


def resize_conv_handler(ex: TiledExecutor, m: _ResizeConv, x: torch.Tensor, owned: bool) -> torch.Tensor:
    """Nearest x2 upsampling (output pixel o reads input o // 2) then the 3x3 ConvNormAct."""
    n, c, h, w = x.shape
    up = None
    for rows, cols in ex._tiles(2 * h, 2 * w):
        t = ex._load(x, (rows[0] // 2, (rows[1] + 1) // 2), (cols[0] // 2, (cols[1] + 1) // 2))
        t = t.repeat_interleave(2, 2).repeat_interleave(2, 3)
        t = t[:, :, rows[0] % 2:rows[0] % 2 + rows[1] - rows[0], cols[0] % 2:cols[0] % 2 + cols[1] - cols[0]]
        up = ex._store(up, t, rows, cols, (n, c, 2 * h, 2 * w))
    return ex.run(m.conv, up, owned=True)


def local_enhancer_handler(ex: TiledExecutor, m: nn.Module, x: torch.Tensor, owned: bool) -> torch.Tensor:
    """pix2pixHD's local enhancer G2: ``back(front(x) + global_net.last(downsample(x)))``.

    For any module with those four attributes (``global_net`` a ResnetGenerator); register the class:
    ``register_handler(LocalEnhancer, local_enhancer_handler)``."""
    g = resnet_last(ex, m.global_net, ex.run(m.downsample, x, owned=False), owned=True)
    h = ex.run(m.front, x, owned=owned)
    h = ex.add_(h if h is not x else x.clone(), g)
    del g
    return ex.run(m.back, h, owned=True)


register_handler(nn.Sequential, sequential_handler)
register_handler(ConvNormAct, sequential_handler)
register_handler(ResBlock, resblock_handler)
register_handler(ResnetGenerator, resnet_handler)
register_handler(_ResizeConv, resize_conv_handler)


@torch.no_grad()
def tiled_forward(net: nn.Module, x: torch.Tensor, tile: int = 256, storage: str | torch.device | None = None):
    """``net(x)`` computed layer by layer over ``tile x tile`` tiles; equal to the whole-image result
    up to float rounding (instance-norm statistics are taken over the whole map).

    ``x``: ``N x C x H x W`` (sides as ``net`` needs them, e.g. multiples of ``net.stride``).
    ``storage``: device of the full maps between layers (default: ``x``'s device); tiles are
    computed on the device of ``net``'s parameters. The result is on ``storage``, with ``net``'s
    return structure (a ResnetGenerator with ``return_features`` returns ``(out, features)``).
    Raises ``NotImplementedError`` for a module it cannot run exactly on tiles.
    """
    if x.dim() != 4:
        raise ValueError(f"tiled_forward takes N x C x H x W, got shape {tuple(x.shape)}")
    param = next(iter(net.parameters()), None)
    compute = param.device if param is not None else x.device
    storage = torch.device(storage) if storage is not None else x.device
    moved = x.to(storage)
    return TiledExecutor(tile, compute, storage).run(net, moved, owned=moved is not x)


def run_network(net: nn.Module, x: torch.Tensor, tile: int | None = None, storage=None):
    """``net(x)``, or :func:`tiled_forward` when ``tile`` is given: what a method's
    ``translate(x, tile=None)`` calls for its translating network."""
    return net(x) if tile is None else tiled_forward(net, x, tile=tile, storage=storage)


__all__ = ["TiledExecutor", "run_network", "local_enhancer_handler", "register_handler", "resnet_last", "tiled_forward"]
