"""``condsynth demo`` without a browser: what each tab does with good and bad uploads (condsynth.demo.runner)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from PIL import Image

from condsynth.demo.runner import DemoRunner, check_upload, read_photo
from condsynth.errors import UserError
from demo_helpers import bad_uploads, held_out_photo, write_tone


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return DemoRunner(tmp_path_factory.mktemp("demo") / "results")


def test_bad_uploads_are_one_line_naming_the_file(tmp_path):
    for name, (path, message) in bad_uploads(tmp_path).items():
        with pytest.raises(UserError) as caught:
            read_photo(str(path))
        text = str(caught.value)
        assert text.startswith(message), (name, text)
        assert "\n" not in text and str(tmp_path) not in text, text      # the file's own name, not the upload path
    with pytest.raises(UserError, match="no photo uploaded"):
        check_upload(None, "photo")


def test_paint_writes_painting_animation_svg_and_json(runner):
    out = runner.paint(held_out_photo(), strokes=40, size=96, seed=0)
    painting = np.asarray(Image.open(out["painting"]))
    assert max(painting.shape[:2]) == 96 and painting.std() > 5          # strokes were drawn, not a blank canvas
    assert out["animation"].stat().st_size > 0 and Image.open(out["animation"]).n_frames > 1
    assert out["svg"].read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "40 strokes" in out["summary"]
    assert out["painting"].parent.parent == runner.workdir               # inside the demo's own folder


def test_paint_rejects_out_of_range_settings(runner):
    with pytest.raises(UserError, match="strokes must be a whole number"):
        runner.paint(held_out_photo(), strokes=0)
    with pytest.raises(UserError, match="size must be a whole number"):
        runner.paint(held_out_photo(), strokes=10, size=5000)


def test_translate_example_scene_with_every_model(runner):
    example = runner.example_scene(3)
    from condsynth.demo.runner import TRANSLATION_MODELS
    for model, (_, direction, _) in TRANSLATION_MODELS.items():
        source = example["photo"] if direction == "BtoA" else example["labels"]
        out = runner.translate(str(source), model, seed=0)
        image = np.asarray(Image.open(out["image"]))
        assert image.shape[:2] == (64, 64) and image.std() > 5, model
    with pytest.raises(UserError, match="unknown model"):
        runner.translate(str(example["labels"]), "nope")


def test_text2image_and_its_messages(runner):
    out = runner.text2image("a large red circle at the top zzzz", n=2, seed=1)
    assert len(out["images"]) == 2 and "zzzz" in out["summary"]
    red = np.asarray(Image.open(out["images"][0])).astype(float)
    assert red[..., 0].max() > 150
    with pytest.raises(UserError, match="no caption"):
        runner.text2image("   ")
    with pytest.raises(UserError, match="at most"):
        runner.text2image("a red circle " * 100)


def test_age_tab_on_a_held_out_face(runner):
    pytest.importorskip("dlib")
    out = runner.age(held_out_photo())
    assert len(out["groups"]) == 10 and out["strip"].is_file()


def test_tabs_say_why_one_is_missing(runner):
    tabs = {t.key: t for t in runner.tabs()}
    assert tabs["paint"].available and tabs["translate"].available and tabs["text2image"].available
    assert not tabs["talk"].available and "--talk-checkpoint" in tabs["talk"].missing
    assert "# painting" in runner.model_card("painting").lower() or runner.model_card("painting").startswith("#")
    with pytest.raises(UserError, match="no talking-face checkpoint"):
        runner.talk(held_out_photo(), held_out_photo())


def test_talk_tab_with_a_user_checkpoint(tmp_path):
    """With --talk-checkpoint (here a one-step run) the tab makes an mp4 with the speech."""
    pytest.importorskip("dlib")
    pytest.importorskip("av")
    from condsynth import testing
    from condsynth.engine.config import build_experiment_config
    from condsynth.engine.trainer import train
    from condsynth.io.video import read_frames
    train(build_experiment_config(testing.tiny_config("avwnet", tmp_path, tmp_path / "run", steps=1)))
    talker = DemoRunner(tmp_path / "results", talk_checkpoint=str(tmp_path / "run"))
    assert {t.key: t for t in talker.tabs()}["talk"].available
    seconds = 0.5
    speech = write_tone(tmp_path / "speech.wav", seconds)
    out = talker.talk(held_out_photo(), str(speech))
    assert len(read_frames(out["video"])) == round(25 * seconds) and "12 frames at 25 fps" in out["summary"]
    with pytest.raises(UserError, match="grace_hopper.jpg: "):            # a photo on the speech input
        talker.talk(held_out_photo(), held_out_photo())


def test_demo_command_serves_localhost_and_removes_its_folder(tmp_path):
    """`condsynth demo` as a user starts it: it listens on 127.0.0.1, and its temporary folder goes when it stops."""
    pytest.importorskip("gradio")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "condsynth", "demo", "--port", str(port), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        for line in proc.stdout:                          # the URL line comes once the server is up
            lines.append(line)
            if "open http://127.0.0.1:" in line:
                break
        assert any(f"open http://127.0.0.1:{port}/" in line for line in lines), "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200 and b"condsynth" in r.read()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("condsynth-demo-")]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("condsynth-demo-")], out


def test_a_busy_port_is_one_line_not_a_traceback():
    pytest.importorskip("gradio")
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "condsynth", "demo", "--port", str(port)], capture_output=True,
                           text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"condsynth: error: --port {port}: cannot listen")


def test_share_nothing_refuses_another_host():
    from condsynth.cli.main import main
    assert main(["demo", "--share-nothing", "--host", "0.0.0.0"]) == 2
