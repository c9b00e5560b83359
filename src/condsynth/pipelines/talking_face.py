"""Talking faces for end users (AVWnet): one face photo + any speech file -> a lip-synced 25 fps video.

    pipe = TalkingFacePipeline.from_pretrained("avwnet-talking64")   # bundled name, export, run or checkpoint
    out = pipe("face.jpg", "speech.mp3")          # any photo; any audio (rate, channels, container)
    len(out.frames) == round(25 * seconds)
    out.save("talk.mp4")                          # h264 + the input audio (AAC, 16 kHz mono)

Steps (spec §2.10): the photo's face is found and aligned to the model's template (the faces toolkit, dlib;
``aligned=True`` takes a crop framed like the training data with its ``landmarks``), L* is its 68 points in the
crop; the speech becomes per-frame MFCC windows with 3-frame zero padding (``io.mfcc``); AT-net predicts the
landmark sequence from L* and the audio; the generator runs over the sequence **in chunks** (``chunk`` frames),
the ConvGRU's and AT-net's LSTM states carried from chunk to chunk, so any length works in bounded memory;
Ĩ^1 is the video. ``paste_back=True`` puts each generated crop back into the whole photo (feathered inverse warp).
Silence is valid (a warning; the mouth stays near the example's); audio shorter than one frame, a photo without a
face and missing files are one-line errors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.errors import UserError
from condsynth.io.images import to_rgb_uint8, uint8_to_tensor
from condsynth.pipelines.base import Pipeline

FPS = 25


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """N x 3 x H x W in [-1, 1] -> N x H x W x 3 uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@dataclass
class TalkingFaceOutput:
    frames: list[np.ndarray]                 # T frames, H x W x 3 uint8 (the crop, or the photo with paste_back)
    crops: list[np.ndarray]                  # the generated aligned crops (model size)
    landmarks: np.ndarray                    # T x 68 x 2, the driving landmarks in crop pixels
    audio: np.ndarray                        # the 16 kHz mono waveform
    silent: bool
    fps: int = FPS
    info: dict = field(default_factory=dict)

    def save(self, path: str | Path, crf: int | None = None) -> Path:
        from condsynth.io.video import write_video
        return write_video(path, self.frames, self.fps, audio=self.audio if len(self.audio) else None,
                           sample_rate=16000, crf=crf)


class TalkingFacePipeline(Pipeline):
    methods = ("avwnet",)

    def check_method(self, method) -> None:
        if not callable(getattr(method, "talk", None)):
            raise UserError(f"{self.source}: a '{method.name}' model does not make talking faces")
        self.size = int(method.model_cfg.image_size)

    def template(self):
        from condsynth.io.faces import template_from_points
        return template_from_points(self.method.G.template)

    @torch.no_grad()
    def generate(self, crop: np.ndarray, crop_landmarks: np.ndarray, windows: torch.Tensor,
                 landmarks: np.ndarray | None = None, chunk: int = 64, amplify=None):
        """The aligned crop (S x S x 3 uint8 at the model's size, its 68 points in pixels) and ``T x 28 x 12``
        windows -> (T x S x S x 3 uint8 frames, T x 68 x 2 driving landmarks in pixels). ``landmarks`` (T x 68 x 2
        crop pixels) drive the generator instead of AT-net's (the ground-truth rows of the evaluation)."""
        s, dev = self.size, self.device
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        example = uint8_to_tensor(crop)[None].to(dev)
        ex_lm = torch.from_numpy(np.asarray(crop_landmarks, np.float32) / (s / 2) - 1)[None].to(dev)
        mfcc = torch.as_tensor(windows, dtype=torch.float32)[None, :, None].to(dev)
        given = None if landmarks is None else \
            torch.from_numpy(np.asarray(landmarks, np.float32) / (s / 2) - 1)[None].to(dev)
        if given is None and self.method.atnet is None:
            raise UserError(f"{self.source}: this AVWnet has no landmark predictor (AT-net) to drive it from audio")
        encoded = self.method.G.encode_example(example, ex_lm)
        g_state = a_state = None
        frames, lms = [], []
        for start in range(0, mfcc.shape[1], chunk):
            a = mfcc[:, start:start + chunk]
            if given is None:
                lm, a_state = self.method.predict_landmarks(ex_lm, a, a_state, amplify)
            else:
                lm = given[:, start:start + chunk]
            out = self.method.talk(example, a, lm, ex_lm, g_state, encoded)
            g_state = out.state
            frames.append(_to_uint8(out.stage1[0]))
            lms.append(((lm[0] + 1) * (s / 2)).cpu().numpy())
        return np.concatenate(frames), np.concatenate(lms)

    def __call__(self, face, audio, *, paste_back: bool = False, aligned: bool = False, landmarks=None,
                 chunk: int = 64, crop_size: int = 256, min_face_size: int = 40, amplify=None, analyzer=None,
                 source: str = "image") -> TalkingFaceOutput:
        from condsynth.io.mfcc import speech_features
        if isinstance(face, (str, Path)):
            from condsynth.io.images import read_image
            if not Path(face).is_file():
                raise UserError(f"{face}: file not found")
            source, face = str(face), read_image(face)
        photo = to_rgb_uint8(np.asarray(face))
        if isinstance(audio, (str, Path)):
            if not Path(audio).is_file():
                raise UserError(f"{audio}: file not found")
            feats = speech_features(audio)
            windows, samples, silent = feats.windows, feats.samples, feats.silent
            if silent:
                warnings.warn(f"{audio}: the audio is silent; the video keeps the mouth still", stacklevel=2)
        else:                                   # per-frame MFCC windows already computed (T x 28 x 12)
            windows = torch.as_tensor(np.asarray(audio, np.float32))
            if windows.ndim != 3 or tuple(windows.shape[1:]) != (28, 12) or len(windows) < 1:
                raise UserError(f"audio: a speech file or T x 28 x 12 MFCC windows, got shape {tuple(windows.shape)}")
            samples, silent = np.zeros(0, np.float32), False
        s = self.size
        info = {"frames": int(windows.shape[0]), "seconds": len(samples) / 16000}
        if aligned:
            if landmarks is None:
                raise UserError(f"{source}: an aligned crop needs its 68 landmarks (landmarks=)")
            lm = np.asarray(landmarks, np.float64)
            crop = photo
            if crop.shape[0] != s:
                lm = (lm + 0.5) * s / crop.shape[0] - 0.5
                crop = np.asarray(F.interpolate(uint8_to_tensor(crop)[None], size=s, mode="area")[0]
                                  .add(1).mul(127.5).round().clamp(0, 255).byte().permute(1, 2, 0))
            a = None
        else:
            from condsynth.io.faces import FaceAnalyzer, align_face, find_faces
            fa = analyzer or FaceAnalyzer()
            (i, f, pts), = find_faces(photo, fa, None, min_face_size, source)
            a = align_face(photo, pts, max(crop_size, s), self.template(), f, i)
            small = align_face(photo, pts, s, self.template(), f, i)
            crop, lm = small.image, small.crop_landmarks
        gen, driving = self.generate(crop, lm, windows, chunk=chunk, amplify=amplify)
        crops = list(gen)
        if paste_back and a is not None:
            from condsynth.io.faces import paste_back as paste
            big = F.interpolate(torch.from_numpy(gen).permute(0, 3, 1, 2).float() / 127.5 - 1, size=a.size,
                                mode="bilinear", align_corners=False)
            frames = [paste(photo, f, a) for f in _to_uint8(big)]
        else:
            frames = crops
        return TalkingFaceOutput(frames, crops, driving, samples, silent, FPS, info)


@dataclass
class AudioLandmarkOutput:
    landmarks: np.ndarray           # B x T x 68 x 2, normalised as the training data (p / (S/2) - 1)


class AudioLandmarkPipeline(Pipeline):
    """AT-net alone: ``pipe(example_landmarks, windows)`` with ``B x 68 x 2`` (or 68 x 2) normalised landmarks and
    ``T x 28 x 12`` (or B x T x 28 x 12) MFCC windows -> the predicted landmark sequences."""
    methods = ("avwnet_atnet",)

    @torch.no_grad()
    def __call__(self, example_landmarks, windows, amplify=None) -> AudioLandmarkOutput:
        lm = torch.as_tensor(np.asarray(example_landmarks, np.float32)).reshape(-1, 68, 2).to(self.device)
        w = torch.as_tensor(np.asarray(windows, np.float32)).to(self.device)
        w = w[None] if w.ndim == 3 else w
        if w.shape[0] == 1 and len(lm) > 1:
            w = w.expand(len(lm), -1, -1, -1)
        pred, _ = self.method.predict(lm, w[:, :, None], amplify=amplify)
        return AudioLandmarkOutput(pred.cpu().numpy())


__all__ = ["AudioLandmarkOutput", "AudioLandmarkPipeline", "TalkingFaceOutput", "TalkingFacePipeline"]
