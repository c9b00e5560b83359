"""The painting environment and the agent's storage (models/painting/env.py)."""

from __future__ import annotations

import pytest
import torch

from condsynth.io.state import load_state, save_state
from condsynth.models.painting.env import ReplayBuffer, TargetStore, composite, step_canvas
from condsynth.models.painting.renderer import load_renderer
from painting_helpers import tiny_renderer_checkpoint


@pytest.fixture(scope="module")
def tiny_renderer(tmp_path_factory):
    return tiny_renderer_checkpoint(tmp_path_factory.mktemp("renderer"))


def test_compositing_equation_and_order():
    canvas = torch.rand(2, 3, 8, 8)
    alpha = torch.rand(2, 2, 1, 8, 8)
    color = torch.rand(2, 2, 3, 1, 1)
    out = composite(canvas, alpha, alpha * color)
    ref = canvas
    for j in range(2):                                            # C(t+1) = a_c + (1 - a_r) C(t), in order
        ref = alpha[:, j] * color[:, j] + (1 - alpha[:, j]) * ref
    assert torch.allclose(out, ref)
    swapped = composite(canvas, alpha.flip(1), (alpha * color).flip(1))
    assert not torch.allclose(out, swapped)
    zero = torch.zeros_like(alpha)
    assert torch.equal(composite(canvas, zero, zero * color), canvas)   # zero alpha: unchanged


def test_step_canvas_uses_five_strokes(tiny_renderer):
    r = load_renderer(str(tiny_renderer))
    act = torch.rand(2, 5 * 13)
    c1, alpha, cs = step_canvas(r, torch.zeros(2, 3, 32, 32), act, 5)
    assert alpha.shape == (2, 5, 1, 32, 32) and cs.shape == (2, 5, 3, 32, 32) and c1.shape == (2, 3, 32, 32)
    assert torch.allclose(cs, alpha * act.view(2, 5, 13)[:, :, 10:].view(2, 5, 3, 1, 1))


def test_replay_buffer_state_round_trips_through_a_pickle_free_file(tmp_path):
    buf = ReplayBuffer(capacity=5, size=4, k=2)
    for step in range(3):                                         # 6 transitions into 5 places: wraps
        buf.add(torch.rand(2, 3, 4, 4), torch.rand(2, 26), step, torch.tensor([2 * step, 2 * step + 1]))
    state = buf.state_dict()
    assert state["n"] == 5 and state["ptr"] == 1
    assert all(isinstance(v, (torch.Tensor, int)) for v in state.values())
    save_state(tmp_path / "replay", state)                        # safetensors + JSON
    other = ReplayBuffer(capacity=5, size=4, k=2)
    other.load_state_dict(load_state(tmp_path / "replay"))
    assert (other.n, other.ptr) == (5, 1)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    for a, b in zip(buf.sample(4, g1), other.sample(4, g2)):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="'c0' is"):
        ReplayBuffer(capacity=5, size=8, k=2).load_state_dict(state)   # another canvas size


def test_target_store_state_round_trips_through_a_pickle_free_file(tmp_path):
    store = TargetStore(slots=3)
    img, has = torch.rand(4, 3, 2, 2), torch.tensor([1.0, 0.0, 1.0, 1.0])
    store.put(torch.arange(4), img, has)                          # slot 3 overwrites slot 0 (ring of 3)
    state = store.state_dict()
    assert state["keys"].tolist() == [0, 1, 2] and state["slots"] == 3
    assert all(isinstance(v, (torch.Tensor, int)) for v in state.values())
    save_state(tmp_path / "targets", state)
    other = TargetStore(slots=3)
    other.load_state_dict(load_state(tmp_path / "targets"))
    got_img, got_has = other.get(torch.tensor([3, 1]), "cpu")
    assert torch.equal(got_img, img[[3, 1]]) and torch.equal(got_has, has[[3, 1]])
    with pytest.raises(ValueError, match="slots"):
        TargetStore(slots=4).load_state_dict(state)
