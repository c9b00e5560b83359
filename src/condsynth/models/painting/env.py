"""The painting environment (thesis Sec. 6.3.2) and the agent's storage of what it lived through.

A state is a batch of canvases C(t) with their targets; an action is a bundle of k = 5 strokes of
13 parameters; the transition T(s, a) renders the bundle with the neural renderer and composites
it stroke by stroke, C(t+1) = a_c + (1 - a_r) * C(t), where a_r is a stroke's alpha map and
a_c = a_r * (r, g, b) its colour. Because the renderer is differentiable, so is T: that is what
makes the DDPG "model-based" (Eq. 6.9).

:class:`ReplayBuffer` and :class:`TargetStore` keep transitions and episode targets; both save to
and load from plain dicts of tensors and ints (``state_dict`` / ``load_state_dict``), no pickle.
"""

from __future__ import annotations

import torch
from torch import nn

from condsynth.data.synth.strokes import SHAPE_PARAMS, STROKE_PARAMS


def render_alpha(renderer: nn.Module, p: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Alpha maps ``N x H x W`` of ``N x >=10`` strokes: the analytic renderer draws any size, the
    neural one its own (a canvas of another size is an error)."""
    if hasattr(renderer, "render"):
        return renderer.render(p[:, :SHAPE_PARAMS], height, width)
    alpha = renderer(p[:, :SHAPE_PARAMS])
    if tuple(alpha.shape[-2:]) != (height, width):
        raise ValueError(f"the neural renderer draws {tuple(alpha.shape[-2:])}, the canvas is {(height, width)}")
    return alpha


def render_bundle(renderer: nn.Module, actions: torch.Tensor, k: int, size=None):
    """Actions ``B x (k*13)`` -> alpha ``B x k x 1 x H x W`` and premultiplied colour strokes a_c.
    ``size`` (H, W) is the canvas's (default: the renderer's own)."""
    b = actions.shape[0]
    a = actions.reshape(b * k, STROKE_PARAMS)
    if size is None:
        alpha = renderer(a[:, :SHAPE_PARAMS])                     # a_r, B*k x H x W
    else:
        alpha = render_alpha(renderer, a, *size)
    h, w = alpha.shape[-2:]
    alpha = alpha.view(b, k, 1, h, w)
    color = a[:, SHAPE_PARAMS:].view(b, k, 3, 1, 1)
    return alpha, alpha * color                                   # a_r, a_c = a_r * (r, g, b)


def composite(canvas: torch.Tensor, alpha: torch.Tensor, color_stroke: torch.Tensor) -> torch.Tensor:
    """Sec. 6.3.2: C(t+1) = a_c + (1 - a_r) * C(t), applied to the k strokes of a bundle in order."""
    for j in range(alpha.shape[1]):
        canvas = color_stroke[:, j] + (1.0 - alpha[:, j]) * canvas
    return canvas


def closed_form_color(canvas: torch.Tensor, alpha: torch.Tensor, target: torch.Tensor, eps: float = 1e-6):
    """The colour c (``B x 3``) that minimises |a c + (1 - a) C - I|^2 for a stroke of alpha ``a``
    (``B x 1 x H x W``) over canvas C: weighted least squares, c = sum a (I - (1 - a) C) / sum a^2,
    clamped to [0, 1]. Differentiable in ``a``."""
    num = (alpha * (target - (1 - alpha) * canvas)).flatten(2).sum(2)
    den = alpha.pow(2).flatten(2).sum(2) + eps
    return (num / den).clamp(0, 1)


def step_canvas(renderer, canvas, actions, k: int = 5, target=None):
    """Transition T(s, a): the new canvas and the stroke tensors (for the focus reward). With a
    ``target``, each stroke's colour is :func:`closed_form_color` on the canvas before it (the
    actions' colours are ignored); :func:`paint_bundle` also returns those colours."""
    return paint_bundle(renderer, canvas, actions, k, target)[:3]


def paint_bundle(renderer, canvas, actions, k: int = 5, target=None):
    """:func:`step_canvas` plus the actions ``B x (k*13)`` with the colours that were painted."""
    alpha, cs = render_bundle(renderer, actions, k, canvas.shape[-2:])
    if target is None:
        return composite(canvas, alpha, cs), alpha, cs, actions
    b = actions.shape[0]
    cols, strokes = [], []
    for j in range(k):
        col = closed_form_color(canvas, alpha[:, j], target)
        strokes.append(alpha[:, j] * col[:, :, None, None])
        canvas = strokes[-1] + (1.0 - alpha[:, j]) * canvas
        cols.append(col)
    a = actions.reshape(b, k, STROKE_PARAMS)
    a = torch.cat([a[..., :SHAPE_PARAMS], torch.stack(cols, 1).to(a.dtype)], -1).reshape(b, -1)
    return canvas, alpha, torch.stack(strokes, 1), a


def _check_shapes(what: str, own: dict, state: dict) -> None:
    for name, t in own.items():
        if name not in state or tuple(state[name].shape) != tuple(t.shape):
            got = tuple(state[name].shape) if name in state else "nothing"
            raise ValueError(f"{what}: '{name}' is {got}, expected {tuple(t.shape)}")


class ReplayBuffer:
    """A ring of transitions (C(t), a_t, t, episode slot); canvases are stored as uint8 (4x smaller).

    The target of a transition is not stored with it but in a :class:`TargetStore` slot, shared by
    the episode's ``max_step`` transitions."""

    def __init__(self, capacity: int, size: int, k: int):
        self.capacity = capacity
        self.c0 = torch.zeros(capacity, 3, size, size, dtype=torch.uint8)
        self.act = torch.zeros(capacity, k * STROKE_PARAMS)
        self.t = torch.zeros(capacity, dtype=torch.long)
        self.slot = torch.zeros(capacity, dtype=torch.long)
        self.n = self.ptr = 0

    def add(self, c0, act, t, slot):
        b = c0.shape[0]
        idx = (torch.arange(b) + self.ptr) % self.capacity
        self.c0[idx] = (c0.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        self.act[idx] = act.detach().cpu()
        self.t[idx] = t
        self.slot[idx] = slot.cpu()
        self.ptr = (self.ptr + b) % self.capacity
        self.n = min(self.n + b, self.capacity)

    def sample(self, b: int, gen=None):
        idx = torch.randint(0, self.n, (b,), generator=gen)
        return self.c0[idx].float() / 255.0, self.act[idx], self.t[idx], self.slot[idx]

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"c0": self.c0, "act": self.act, "t": self.t, "slot": self.slot}

    def state_dict(self) -> dict:
        return {**self._tensors(), "n": self.n, "ptr": self.ptr}

    def load_state_dict(self, state: dict) -> None:
        """Restore a buffer of the same capacity, canvas size and bundle size."""
        own = self._tensors()
        _check_shapes("replay buffer", own, state)
        for name, t in own.items():
            t.copy_(state[name])
        self.n, self.ptr = int(state["n"]), int(state["ptr"])


class TargetStore:
    """Episode targets, their masks and cached feature masks, by slot (a ring of episodes).

    ``put(slots, *tensors)`` stores row i of every tensor under slot ``slots[i]`` (modulo the ring
    size); ``get(slots, device)`` returns the stacked rows, in the order they were put."""

    def __init__(self, slots: int):
        self.slots = slots
        self.data: dict[int, tuple] = {}

    def put(self, slot_ids, *tensors):
        for i, s in enumerate(slot_ids.tolist()):
            self.data[s % self.slots] = tuple(t[i].detach().cpu() for t in tensors)

    def get(self, slot_ids, device):
        rows = [self.data[s % self.slots] for s in slot_ids.tolist()]
        return [torch.stack(col).to(device) for col in zip(*rows)]

    def state_dict(self) -> dict:
        """``slots``, the occupied ``keys`` and one stacked tensor per stored column, ``column_<j>``."""
        keys = sorted(self.data)
        state = {"slots": self.slots, "keys": torch.tensor(keys, dtype=torch.long)}
        for j, column in enumerate(zip(*(self.data[k] for k in keys))):
            state[f"column_{j}"] = torch.stack(column)
        return state

    def load_state_dict(self, state: dict) -> None:
        if int(state["slots"]) != self.slots:
            raise ValueError(f"target store: {state['slots']} slots, expected {self.slots}")
        columns = [state[f"column_{j}"] for j in range(sum(k.startswith("column_") for k in state))]
        self.data = {k: tuple(c[i] for c in columns) for i, k in enumerate(state["keys"].tolist())}
