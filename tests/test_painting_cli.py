"""``condsynth paint`` and the painting API: outputs, round trip, and bad inputs (one clear line)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from condsynth.cli.main import main
from condsynth.models import painting as P
from condsynth.testing import prepare_training


@pytest.fixture(scope="module")
def tiny_agent(tmp_path_factory):
    """A tiny 32x32 agent checkpoint in the engine's layout (config.json + model.safetensors)."""
    from condsynth.config import to_dict
    from condsynth.data.painting import PaintingDataConfig
    from condsynth.io.checkpoint import write_checkpoint
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("agent")
    rcfg = P.RendererConfig(size=32, fc=[64, 1024], base_channels=4, conv_widths=[8])
    r = P.NeuralRenderer(rcfg)
    rdir = write_checkpoint(root / "renderer", {"config": {"method": "painting_renderer", "model": to_dict(rcfg)}},
                            {f"renderer.{k}": v for k, v in r.state_dict().items()})
    cfg = P.PaintingAgentConfig(renderer=str(rdir), size=32, focus_size=16, net_input_size=32, max_step=4,
                                actor_width=4, critic_width=4, attention_width=8, attention_unet_width=4,
                                attention_res_blocks=1, feature_mask="saliency", vgg_weight=0.0)
    agent = prepare_training(P.PaintingAgent(cfg, PaintingDataConfig(size=32)))
    w = {f"{name}.{k}": v for name, net in agent.networks().items() for k, v in net.state_dict().items()}
    return write_checkpoint(root / "agent", {"config": {"method": "painting_agent", "model": to_dict(cfg),
                                                        "data": {"size": 32}}, "step": 0}, w)


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(p)
    return p


def run(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def test_paint_command_writes_all_outputs(tiny_agent, photo, tmp_path, capsys):
    out = tmp_path / "o" / "painting.png"
    code, err = run(["paint", str(photo), "--strokes", "12", "--mode", "agent", "--out", str(out),
                     "--checkpoint", str(tiny_agent),
                     "--animation", str(tmp_path / "a.gif"), "--svg", str(tmp_path / "s.svg"),
                     "--json", str(tmp_path / "s.json"), "--contact-sheet", str(tmp_path / "c.png")], capsys)
    assert code == 0, err
    assert Image.open(out).size == (32, 32)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames >= 3                                             # 12 strokes, a frame per 5 + final hold
    doc = json.loads((tmp_path / "s.json").read_text())
    assert len(doc["strokes"]) == 12 and len(doc["strokes"][0]) == 13
    svg = (tmp_path / "s.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<g ") == 12
    assert (tmp_path / "c.png").exists()


def test_mp4_animation(tiny_agent, photo, tmp_path, capsys):
    code, err = run(["paint", str(photo), "-n", "10", "--mode", "agent", "--out", str(tmp_path / "p.png"), "--checkpoint",
                     str(tiny_agent), "--animation", str(tmp_path / "a.mp4")], capsys)
    assert code == 0, err
    import av
    with av.open(str(tmp_path / "a.mp4")) as box:
        assert sum(1 for _ in box.decode(video=0)) >= 2


@pytest.mark.parametrize("n", ["0", "-3", "abc", "2.5", "1000001"])
def test_bad_stroke_counts_are_one_line(n, tiny_agent, photo, tmp_path, capsys):
    out = tmp_path / "p.png"
    code, err = run(["paint", str(photo), "--strokes", n, "--out", str(out), "--checkpoint", str(tiny_agent)], capsys)
    assert code == 2 and err.startswith("condsynth: error:") and "stroke count" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_default_mode_is_the_agent_and_optimize_writes_frames(tiny_agent, photo, tmp_path, capsys):
    """With an actor in the checkpoint the default is the agent; --mode optimize still works."""
    out = tmp_path / "p.png"
    code, err = run(["paint", str(photo), "-n", "25", "--out", str(out), "--checkpoint",
                     str(tiny_agent), "--json", str(tmp_path / "s.json")], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["mode"] == "agent" and len(doc["strokes"]) == 25
    code, err = run(["paint", str(photo), "-n", "25", "--iters", "3", "--mode", "optimize", "--out", str(out),
                     "--checkpoint", str(tiny_agent), "--json", str(tmp_path / "s.json"), "--overwrite"], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["mode"] == "optimize" and len(doc["strokes"]) == 25


def test_not_an_image_and_missing_file(tiny_agent, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("hello, I am not an image")
    out = tmp_path / "p.png"
    code, err = run(["paint", str(bad), "--out", str(out), "--checkpoint", str(tiny_agent)], capsys)
    assert code == 2 and str(bad) in err and len(err.splitlines()) == 1 and not out.exists()
    code, err = run(["paint", str(tmp_path / "nope.jpg"), "--out", str(out), "--checkpoint", str(tiny_agent)], capsys)
    assert code == 2 and "not found" in err and not out.exists()


def test_bad_output_suffix_and_bad_checkpoint(photo, tiny_agent, tmp_path, capsys):
    code, err = run(["paint", str(photo), "--out", str(tmp_path / "p.txt"), "--checkpoint", str(tiny_agent)], capsys)
    assert code == 2 and "p.txt" in err
    code, err = run(["paint", str(photo), "--out", str(tmp_path / "p.png"), "--animation", str(tmp_path / "a.avi"),
                     "--checkpoint", str(tiny_agent)], capsys)
    assert code == 2 and "a.avi" in err
    code, err = run(["paint", str(photo), "--out", str(tmp_path / "p.png"), "--checkpoint", str(tmp_path)], capsys)
    assert code == 2 and "checkpoint" in err and len(err.splitlines()) == 1


KINDS = ["1x1", "cmyk", "16bit", "rgba", "palette", "gray", "large"]


def unusual_image(kind, tmp_path):
    """An image file of an unusual kind: 1x1, CMYK, 16-bit, alpha, palette, grey, 12 Mpx."""
    p = tmp_path / f"{kind}.png"
    rng = np.random.default_rng(1)
    if kind == "1x1":
        Image.new("RGB", (1, 1), (200, 30, 40)).save(p)
    elif kind == "cmyk":
        p = tmp_path / "cmyk.jpg"
        Image.new("CMYK", (30, 20), (10, 200, 30, 5)).save(p)
    elif kind == "16bit":
        Image.fromarray(rng.integers(0, 65535, (20, 30), dtype=np.uint16)).save(p)
    elif kind == "rgba":
        a = rng.integers(0, 255, (20, 30, 4), dtype=np.uint8)
        Image.fromarray(a, "RGBA").save(p)
    elif kind == "palette":
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).convert("P").save(p)
    elif kind == "gray":
        Image.fromarray(rng.integers(0, 255, (20, 30), dtype=np.uint8)).save(p)
    else:
        Image.new("RGB", (4000, 3000), (90, 120, 200)).save(p)
    return p


@pytest.mark.parametrize("kind", KINDS)
def test_unusual_images_are_painted(kind, tiny_agent, tmp_path, capsys):
    p = unusual_image(kind, tmp_path)
    out = tmp_path / "p.png"
    code, err = run(["paint", str(p), "-n", "5", "--iters", "3", "--out", str(out), "--checkpoint", str(tiny_agent)],
                    capsys)
    assert code == 0, err
    arr = np.asarray(Image.open(out))
    assert arr.shape == (32, 32, 3)
    if kind == "1x1":
        from condsynth.pipelines.paint import load_target
        t = load_target(p, 32)
        assert torch.allclose(t[0, :, 5, 5], torch.tensor([200, 30, 40]) / 255.0, atol=0.01)  # a flat colour


def test_api_round_trip_strokes_reproduce_the_canvas(tiny_agent, photo, tmp_path):
    from condsynth.io.strokes import load_strokes_json
    from condsynth.pipelines.paint import Painter
    painter = Painter.from_pretrained(str(tiny_agent))
    res = painter.paint(photo, 13, mode="agent")
    assert res.strokes.shape == (13, 13) and res.canvas.shape == (32, 32, 3) and res.frames[-1][0] == 13
    res.save(tmp_path / "p.png", json_path=tmp_path / "p.json")
    strokes = torch.from_numpy(load_strokes_json(tmp_path / "p.json"))
    with torch.no_grad():
        canvas = P.step_canvas(painter.renderer, torch.zeros(1, 3, 32, 32), strokes.reshape(1, -1), 13)[0]
    assert np.allclose(canvas[0].permute(1, 2, 0).numpy(), res.canvas, atol=1e-4)   # JSON keeps 5 decimals


def test_optimize_mode_beats_black_and_divide_mode(tiny_agent, photo):
    from condsynth.pipelines.paint import Painter
    painter = Painter.from_pretrained(str(tiny_agent))
    res = painter.paint(photo, 10, mode="optimize", optimize_iters=5, optimize_group=5)
    black = float(np.mean(res.target ** 2))
    assert res.mse < black and res.strokes.shape == (10, 13)
    big = painter.paint(photo, 20, mode="agent", divide=2)
    assert big.canvas.shape == (64, 64, 3) and big.strokes.shape[1] == 13
    assert big.strokes.shape[0] == 10 + 4 * 2                          # half global, the rest per patch
    with pytest.raises(Exception, match="mode"):
        painter.paint(photo, 5, mode="paint-by-numbers")


def test_bundled_checkpoint_loads_and_paints(photo):
    """The shipped renderer + actor (src/condsynth/assets/painting) paint out of the box."""
    from condsynth.pipelines.paint import Painter
    painter = Painter.from_pretrained()
    assert painter.agent is not None and painter.size == 64 and painter.analytic   # trained at 64x64
    res = painter.paint(photo, 10, mode="agent", accept="all")
    assert res.canvas.shape == (48, 40, 3) and res.strokes.shape == (10, 13)    # the photo's own size
    assert res.mse < float(np.mean(res.target ** 2))                    # closer than the black canvas


def test_export_of_the_bundled_agent_paints_through_the_cli(photo, tmp_path, capsys):
    """`condsynth export` of the bundled agent writes actor, attention module and the renderer it
    runs with; `condsynth paint --checkpoint EXPORT` paints exactly as the bundled pipeline does."""
    from condsynth.pipelines.paint import PaintingPipeline
    export = tmp_path / "export"
    code, err = run(["export", "painting", "--out", str(export)], capsys)
    assert code == 0, err
    doc = json.loads((export / "pipeline.json").read_text())
    assert doc["method"] == "painting_agent"
    assert {k: v["kind"] for k, v in doc["components"].items()} == {"actor": "trained", "attention": "trained"}
    out = tmp_path / "p.png"
    code, err = run(["paint", str(photo), "-n", "15", "--mode", "agent", "--out", str(out),
                     "--checkpoint", str(export)], capsys)
    assert code == 0, err
    bundled = PaintingPipeline.from_pretrained("painting")(photo, strokes=15, mode="agent").canvas
    again = PaintingPipeline.from_pretrained(export)(photo, strokes=15, mode="agent").canvas
    np.testing.assert_array_equal(bundled, again)
    assert np.asarray(Image.open(out)).shape == (48, 40, 3)


# ------------------------------------------------------------ the analytic agent: any size, exact SVG

@pytest.fixture(scope="module")
def analytic_agent(tmp_path_factory):
    """A tiny untrained 32x32 agent with the analytic renderer and closed-form colours."""
    from condsynth.config import to_dict
    from condsynth.data.painting import PaintingDataConfig
    from condsynth.io.checkpoint import write_checkpoint
    torch.manual_seed(0)
    cfg = P.PaintingAgentConfig(renderer="analytic", color="closed_form", trainer="greedy", init_thickness=0.3,
                                size=32, focus_size=16, net_input_size=32, max_step=4, actor_width=4,
                                attention_width=8, attention_unet_width=4, attention_res_blocks=1,
                                feature_mask="saliency", vgg_weight=0.0, renderer_segments=4)
    agent = prepare_training(P.PaintingAgent(cfg, PaintingDataConfig(size=32)))
    w = {f"{name}.{k}": v for name, net in agent.networks().items() for k, v in net.state_dict().items()}
    root = tmp_path_factory.mktemp("analytic")
    return write_checkpoint(root / "agent", {"config": {"method": "painting_agent", "model": to_dict(cfg),
                                                        "data": {"size": 32}}, "step": 0}, w)


def svg_raster(path, h, w):
    """Point-sample the disc masks of an exact SVG at the 2x-canvas pixel centres, 2x2 means."""
    import re
    text = path.read_text()
    canvas = np.zeros((h, w, 3))
    ys, xs = (np.mgrid[0:2 * h, 0:2 * w] + 0.5) / 2
    for body, col in re.findall(r'<mask id="m\d+"[^>]*>(.*?)</mask><rect [^>]*fill="#(\w{6})"', text, re.S):
        m = np.zeros((2 * h, 2 * w))
        for cx, cy, r, g in re.findall(r'cx="([\d.]+)" cy="([\d.]+)" r="([\d.]+)" fill="rgb\((\d+),', body):
            m[(xs - float(cx)) ** 2 + (ys - float(cy)) ** 2 <= float(r) ** 2] = int(g) / 255
        a = m.reshape(h, 2, w, 2).mean((1, 3))[..., None]
        rgb = np.array([int(col[i:i + 2], 16) for i in (0, 2, 4)]) / 255
        canvas = a * rgb + (1 - a) * canvas
    return canvas


def test_analytic_agent_keeps_aspect_ratio_and_its_svg_is_the_raster(analytic_agent, tmp_path, capsys):
    src = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 45, 3), dtype=np.uint8)).save(src)
    out, svg, js = tmp_path / "p.png", tmp_path / "p.svg", tmp_path / "p.json"
    code, err = run(["paint", str(src), "--strokes", "30", "--mode", "agent", "--size", "60", "--out", str(out),
                     "--checkpoint", str(analytic_agent), "--svg", str(svg), "--json", str(js),
                     "--animation", str(tmp_path / "a.gif")], capsys)
    assert code == 0, err
    img = np.asarray(Image.open(out), np.float64) / 255
    assert img.shape == (40, 60, 3)                                # 45x30 -> long side 60, ratio kept
    from condsynth.io.strokes import load_strokes_json
    st = load_strokes_json(js)
    assert st.shape == (30, 13)
    assert np.abs(svg_raster(svg, 40, 60) - img).max() < 0.02       # the SVG draws the raster (8-bit, 3-digit v)
    # the default size is the photo's own; refine runs; the photo is painted better than black
    from condsynth.pipelines.paint import PaintingPipeline
    pipe = PaintingPipeline.from_pretrained(analytic_agent)
    r0 = pipe.paint(src, 20, mode="agent")
    assert r0.canvas.shape == (30, 45, 3) and len(r0.frames) == 4
    r1 = pipe.paint(src, 20, mode="agent", refine=3)
    assert r1.mode == "agent+optimize" and r1.mse < float(np.mean(r1.target ** 2))


@pytest.mark.parametrize("flags,msg", [(["--size", "0"], "--size must be"), (["--size", "100000"], "--size must be"),
                                       (["--size", "abc"], "--size must be"), (["--refine", "-1"], "--refine must be"),
                                       (["--detail", "2"], "--detail must be"), (["--strokes", "0"], "positive"),
                                       (["--strokes", "-5"], "positive")])
def test_bad_size_refine_detail_are_one_line(flags, msg, analytic_agent, photo, tmp_path, capsys):
    code, err = run(["paint", str(photo), "--mode", "agent", "--checkpoint", str(analytic_agent),
                     "--out", str(tmp_path / "o.png"), *flags], capsys)
    assert code == 2 and msg in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("kind", KINDS)
def test_unusual_images_painted_by_the_analytic_agent_keep_their_shape(kind, analytic_agent, tmp_path, capsys):
    p = unusual_image(kind, tmp_path)
    out = tmp_path / "p.png"
    code, err = run(["paint", str(p), "-n", "25", "--mode", "agent", "--out", str(out),
                     "--checkpoint", str(analytic_agent)], capsys)
    assert code == 0, err
    want = {"1x1": (1, 1), "large": (768, 1024)}.get(kind, (20, 30))    # the photo's own size, at most 1024
    assert np.asarray(Image.open(out)).shape[:2] == want


def test_pyramid_plan_spends_the_budget_coarse_to_fine():
    from condsynth.pipelines.paint_plan import boxes, pyramid_plan, share_out
    plan = pyramid_plan(80, 109, 128)
    assert [(lv.rows, lv.cols) for lv in plan][:3] == [(1, 1), (2, 2), (3, 4)]
    full = [lv for lv in plan if lv.bundles_per_patch]
    spent = sum(lv.rows * lv.cols * lv.bundles_per_patch for lv in full)
    assert spent == 80 if plan[-1].bundles_per_patch else spent < 80     # the last level takes the rest
    assert pyramid_plan(100, 109, 128)[-1].bundles_per_patch == 0
    assert all(h >= 6 and w >= 6 for lv in plan for _, _, h, w in boxes(lv, 109, 128))
    cells = boxes(plan[1], 109, 128)
    assert sum(h * w for _, _, h, w in cells) == 109 * 128            # a level tiles the canvas
    assert pyramid_plan(1, 64, 64) == [pyramid_plan(1, 64, 64)[0]] and pyramid_plan(1, 64, 64)[0].rows == 1
    assert share_out(7, [1.0, 0.0, 3.0]) == [2, 0, 5] and sum(share_out(5, [0.2] * 3)) == 5


def test_pyramid_with_accept_improving_never_raises_the_error(analytic_agent, tmp_path):
    from condsynth.pipelines.paint import PaintingPipeline
    src = tmp_path / "grad.png"
    yy, xx = np.mgrid[0:40, 0:56]
    img = np.stack([xx / 56, yy / 40, 0.5 + 0 * xx], -1)
    Image.fromarray((img * 255).astype(np.uint8)).save(src)
    pipe = PaintingPipeline.from_pretrained(analytic_agent)
    r = pipe.paint(src, 60, mode="agent", record_every=1)
    assert r.mode == "agent" and 0 < len(r.strokes) <= 60
    errs = [float(np.mean((f / 255.0 - r.target) ** 2)) for _, f in r.frames]
    assert all(b <= a + 2e-4 for a, b in zip(errs, errs[1:]))         # 8-bit frames: rounding only
    assert errs[-1] < float(np.mean(r.target ** 2))
    every = pipe.paint(src, 60, mode="agent", accept="all")
    assert len(every.strokes) == 60
    patches = pipe.paint(src, 60, mode="agent", layout="patches")
    assert len(patches.strokes) == 60 and patches.canvas.shape == r.canvas.shape
    from condsynth.errors import UserError
    with pytest.raises(UserError, match="layout must be"):
        pipe.paint(src, 10, mode="agent", layout="spiral")


def test_mirrored_proposals_map_back_to_the_patch(analytic_agent, tmp_path):
    """A bundle proposed on a left-right / upside-down mirrored view, mirrored back, draws the
    mirror image of the unmirrored bundle (up to the rasteriser's integer disc centres); painting
    with 1, 2 or 4 proposals works and a bad count is refused."""
    import torch

    from condsynth.errors import UserError
    from condsynth.models.painting import env as P
    from condsynth.pipelines.paint import PaintingPipeline, to_canvas
    pipe = PaintingPipeline.from_pretrained(analytic_agent)
    H, W, S = 40, 56, pipe.agent.model_cfg.size
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 13, generator=g)
    a[:, 6:10:2] *= 0.3
    mirrored = a.clone()
    mirrored[:, 0:6:2] = 1 - a[:, 0:6:2]
    upside = a.clone()
    upside[:, 1:6:2] = 1 - a[:, 1:6:2]
    zero = torch.zeros(1, 3, H, W)

    def draw(st):
        return P.paint_bundle(pipe.draw_renderer, zero, to_canvas(st, 0, 0, H, W, H, W, S).reshape(1, -1), 3)[0]

    plain = draw(a)
    assert plain.abs().sum() > 0
    def rel(x, y):
        return float((x - y).abs().mean() / y.abs().mean())

    # the disc centres are truncated to whole 2x-canvas pixels (the rasteriser's rule), so the
    # mirror holds up to half an output pixel at the strokes' edges; unmirrored is far off
    assert rel(draw(mirrored), plain.flip(-1)) < 0.2 and rel(draw(upside), plain.flip(-2)) < 0.25
    assert rel(plain, plain.flip(-1)) > 0.6 and rel(plain, plain.flip(-2)) > 0.6
    src = tmp_path / "grad.png"
    yy, xx = np.mgrid[0:40, 0:56]
    Image.fromarray((np.stack([xx / 56, yy / 40, 0.5 + 0 * xx], -1) * 255).astype(np.uint8)).save(src)
    for k in (1, 2, 4):
        r = pipe.paint(src, 30, mode="agent", proposals=k)
        assert 0 < len(r.strokes) <= 30 and r.mse < float(np.mean(r.target ** 2))
    with pytest.raises(UserError, match="proposals must be"):
        pipe.paint(src, 10, mode="agent", proposals=3)


def test_paint_hard_greedy_is_paint_hard_with_fitted_colours_and_acceptance():
    """The search's compositing in boxes equals the full-canvas rules: the colours are
    ``closed_form_color`` on the whole canvas, the kept strokes redrawn by ``paint_hard`` give the
    same canvas, and with acceptance no kept stroke raises the error."""
    import torch

    from condsynth.models.painting import env as P
    from condsynth.models.painting.analytic_renderer import paint_hard, paint_hard_greedy, render_hard
    H, W = 30, 44
    g = torch.Generator().manual_seed(3)
    strokes = torch.rand(12, 13, generator=g)
    strokes[:, 6:10:2] *= 0.4
    strokes[0, 0:6] = 3.0                                          # off the canvas: draws nothing
    yy, xx = np.mgrid[0:H, 0:W]
    target = np.stack([xx / W, yy / H, 0.3 + 0 * xx], 0).astype(np.float32)
    canvas = np.full((3, H, W), 0.5, np.float32)
    for accept in (False, True):
        kept, change, (y, x, box) = paint_hard_greedy(strokes, canvas, target, fit=True, accept=accept)
        full = canvas.copy()
        full[:, y:y + box.shape[1], x:x + box.shape[2]] = box
        redrawn = paint_hard(kept, H, W, canvas=torch.from_numpy(canvas)).numpy()
        assert np.abs(redrawn - full).max() < 1e-5
        err = lambda c: float(np.square(c - target, dtype=np.float64).sum())  # noqa: E731
        assert abs(err(full) - err(canvas) - change) < 1e-3
        if not accept:
            assert len(kept) == 12
            c0 = torch.from_numpy(canvas)[None]
            alpha = render_hard(strokes[1:2, :10], H, W)[None]           # stroke 1 on the untouched canvas
            want = P.closed_form_color(c0, alpha, torch.from_numpy(target)[None])[0]
            assert torch.allclose(kept[1, 10:].float(), want.float(), atol=1e-4)
        else:
            assert 0 < len(kept) < 12 and change < 0
            cur = canvas.copy()
            for s in kept:                                       # each kept stroke lowered the error
                nxt = paint_hard(s[None], H, W, canvas=torch.from_numpy(cur)).numpy()
                assert err(nxt) < err(cur) + 1e-6
                cur = nxt
