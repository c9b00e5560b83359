"""`condsynth talk` and TalkingFacePipeline with a tiny trained AVWnet (+ AT-net): a real photo and speech -> an
mp4 with round(25 x duration) frames and the audio track, chunked generation equal to one pass, paste-back, and
bad inputs (silence, audio shorter than a frame, 8 kHz stereo, a photo without a face, missing files)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from condsynth import testing
from condsynth.cli.main import main
from condsynth.engine.config import build_experiment_config
from condsynth.engine.trainer import train
from condsynth.errors import UserError
from condsynth.pipelines.talking_face import TalkingFacePipeline

from test_io_audio import _write_wav  # noqa: E402 - the audio tests' file writer

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("talk")
    train(build_experiment_config(testing.tiny_config("avwnet", work, work / "run", steps=1)))
    return work / "run"


@pytest.fixture(scope="module")
def pipe(run):
    return TalkingFacePipeline.from_pretrained(run, device="cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("talk-inputs")
    Image.fromarray(skdata.astronaut()).save(d / "face.png")
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(d / "blank.png")
    t = np.arange(int(0.62 * 16000)) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    _write_wav(d / "speech.wav", speech[None], 16000)
    t8 = np.arange(int(0.62 * 8000)) / 8000
    s8 = (0.3 * np.sin(2 * np.pi * 180 * t8)).astype(np.float32)
    _write_wav(d / "stereo8k.wav", np.stack([s8, s8]), 8000)
    _write_wav(d / "silence.wav", np.zeros((1, 8000), np.float32), 16000)
    _write_wav(d / "short.wav", speech[None, :320], 16000)
    return d


def test_talk_writes_an_mp4_with_the_frames_and_the_audio(run, files, tmp_path, capsys):
    from condsynth.io.audio import read_audio
    from condsynth.io.video import read_frames
    out = tmp_path / "talk.mp4"
    rc = main(["talk", "--face", str(files / "face.png"), "--audio", str(files / "speech.wav"), "--out", str(out),
               "--checkpoint", str(run), "--chunk", "4"])
    assert rc == 0, capsys.readouterr().err
    frames = read_frames(out)
    assert len(frames) == round(25 * 0.62) and frames[0].shape == (32, 32, 3)
    assert abs(len(read_audio(out)) / 16000 - 0.62) < 0.04
    pasted = tmp_path / "pasted.mp4"
    rc = main(["talk", "--face", str(files / "face.png"), "--audio", str(files / "stereo8k.wav"), "--out",
               str(pasted), "--checkpoint", str(run), "--paste-back"])
    assert rc == 0
    frames = read_frames(pasted)
    assert len(frames) == round(25 * 0.62) and frames[0].shape == (512, 512, 3)     # the whole photo


def test_chunks_with_carried_state_equal_one_pass(pipe, files):
    one = pipe(files / "face.png", files / "speech.wav", chunk=1000)
    chunked = pipe(files / "face.png", files / "speech.wav", chunk=3)
    assert len(one.frames) == 16
    diff = np.abs(np.stack(one.frames).astype(int) - np.stack(chunked.frames).astype(int))
    assert diff.max() <= 1                                            # uint8 rounding of float differences


def test_an_export_holds_the_atnet_but_not_the_training_lip_reader(run, pipe, files, tmp_path):
    import json
    assert pipe.method.model_cfg.use_word_loss and pipe.method.reader is not None
    export = pipe.save_pretrained(tmp_path / "export")
    assert set(json.loads((export / "pipeline.json").read_text())["components"]) == {"G", "atnet"}
    assert not (export / "reader").exists()
    want = pipe(files / "face.png", files / "speech.wav").frames
    got = TalkingFacePipeline.from_pretrained(export, device="cpu")(files / "face.png", files / "speech.wav").frames
    np.testing.assert_array_equal(np.stack(want), np.stack(got))


def test_bad_inputs_are_one_line(run, files, tmp_path, capsys):
    base = ["--checkpoint", str(run), "--out", str(tmp_path / "o.mp4")]
    cases = [(["--face", str(files / "face.png"), "--audio", str(files / "short.wav")], "shorter than one video frame"),
             (["--face", str(files / "blank.png"), "--audio", str(files / "speech.wav")], "blank.png: no face found"),
             (["--face", str(files / "nope.png"), "--audio", str(files / "speech.wav")], "nope.png: file not found"),
             (["--face", str(files / "face.png"), "--audio", str(files / "nope.wav")], "nope.wav: file not found")]
    for args, message in cases:
        rc = main(["talk", *args, *base])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "o.mp4").exists()
    rc = main(["talk", "--face", str(files / "face.png"), "--audio", str(files / "silence.wav"), *base])
    out = capsys.readouterr().out
    assert rc == 0 and "silent" in out and (tmp_path / "o.mp4").is_file()


def test_pipeline_refuses_a_wrong_window_array(pipe):
    with pytest.raises(UserError, match="28 x 12"):
        pipe(np.zeros((32, 32, 3), np.uint8), np.zeros((4, 13, 12)), aligned=True, landmarks=np.zeros((68, 2)))


def test_the_bundled_model_is_the_default_and_opens_the_mouth_with_the_sound(files, tmp_path, capsys):
    """No --checkpoint: the bundled avwnet-talking64 (64x64). Its mouth moves with the sound: over a spoken clip the
    inner-mouth box strays further from a silent clip's first frame than it does over the silent clip itself."""
    from condsynth.io.video import read_frames
    out = tmp_path / "bundled.mp4"
    rc = main(["talk", "--face", str(files / "face.png"), "--audio", str(files / "speech.wav"), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    frames = read_frames(out)
    assert len(frames) == round(25 * 0.62) and frames[0].shape == (64, 64, 3)
    pipe = TalkingFacePipeline.from_pretrained("avwnet-talking64", device="cpu")
    assert pipe.method.model_cfg.landmark_motion == "coordinates"
    silent = tmp_path / "silent.mp4"
    assert main(["talk", "--face", str(files / "face.png"), "--audio", str(files / "silence.wav"),
                 "--out", str(silent)]) == 0
    still = np.stack(read_frames(silent)).astype(np.float32)
    spoken = np.stack(read_frames(out)).astype(np.float32)
    mouth = (slice(None), slice(34, 44), slice(24, 41))       # the template's inner-mouth box at 64x64
    speaking_change = np.abs(spoken[mouth] - still[0][mouth[1:]]).mean()
    silent_change = np.abs(still[mouth] - still[0][mouth[1:]]).mean()
    assert speaking_change > silent_change + 0.5, (speaking_change, silent_change)
