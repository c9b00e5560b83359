"""Face detection, 68-point landmarks and 128-D identity descriptors with dlib (offline).

Used by the face metrics (:mod:`condsynth.metrics.lmd`, :mod:`~condsynth.metrics.verification`,
re-exported by :mod:`condsynth.metrics.faces`) and by data preparation, which may not import
``metrics``. The landmark index table is :mod:`condsynth.io.landmarks`.

The model files come from the ``face_recognition_models`` wheel (the ``faces`` extra), which
ships dlib's ``shape_predictor_68_face_landmarks.dat`` and
``dlib_face_recognition_resnet_model_v1.dat``. They are located without importing that package
(its ``__init__`` needs ``pkg_resources``, gone from recent setuptools) and resolved through
:func:`~condsynth.io.weights.resolve_weights`, so an explicit path, an environment variable or the
standard caches work as well and every file is checksum-verified.

Detection: dlib's HOG frontal-face detector (upsampled once); when it finds nothing, OpenCV's Haar
frontal-face cascade (shipped in opencv-python-headless < 5) is tried. The largest face is used.
Every result records which detector found the face.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from condsynth.errors import UserError
from condsynth.io.weights import resolve_weights, sha256_of

LANDMARKS68_FILE = "shape_predictor_68_face_landmarks.dat"
LANDMARKS68_SHA256 = "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"
FACE_REC_FILE = "dlib_face_recognition_resnet_model_v1.dat"
FACE_REC_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
_HINT = "pip install face_recognition_models==0.3.0 (the 'faces' extra) ships it"


def _packaged(filename: str) -> Path | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.origin:
        return None
    p = Path(spec.origin).parent / "models" / filename
    return p if p.is_file() else None


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise UserError("face analysis needs dlib: pip install 'condsynth[faces]' (dlib-bin)") from None
    return dlib


def landmarks68_path(path: str | None = None) -> Path:
    return resolve_weights(LANDMARKS68_FILE, what="dlib 68-point landmark", path=path or _packaged(LANDMARKS68_FILE),
                           env_var="CONDSYNTH_DLIB_LANDMARKS68", sha256=LANDMARKS68_SHA256, source_hint=_HINT)


def face_rec_path(path: str | None = None) -> Path:
    return resolve_weights(FACE_REC_FILE, what="dlib face recognition ResNet", path=path or _packaged(FACE_REC_FILE),
                           env_var="CONDSYNTH_DLIB_FACE_REC", sha256=FACE_REC_SHA256, source_hint=_HINT)


@dataclass
class Face:
    box: tuple[int, int, int, int]   # left, top, right, bottom (pixels)
    detector: str                    # 'dlib-hog' or 'opencv-haar'


class FaceAnalyzer:
    """Detect faces, predict 68 landmarks, compute 128-D descriptors; models load on first use."""

    def __init__(self, landmarks_path: str | None = None, face_rec_path_: str | None = None,
                 upsample: int = 1, haar_fallback: bool = True):
        self.dlib = _import_dlib()
        self._landmarks_arg, self._rec_arg = landmarks_path, face_rec_path_
        self.upsample = upsample
        self.haar_fallback = haar_fallback
        self._detector = self.dlib.get_frontal_face_detector()
        self._haar = None
        self._models: dict[str, object] = {}
        self.files: dict[str, dict[str, str]] = {}

    # -- models -------------------------------------------------------------------------------
    def _model(self, key: str, resolve, build):
        """The model ``build(resolve())``, loaded on first use and recorded in ``files[key]`` with its sha256."""
        if key not in self._models:
            path = resolve()
            self._models[key] = build(str(path))
            self.files[key] = {"file": str(path), "sha256": sha256_of(path)}
        return self._models[key]

    @property
    def predictor(self):
        return self._model("landmarks68", lambda: landmarks68_path(self._landmarks_arg), self.dlib.shape_predictor)

    @property
    def recognizer(self):
        return self._model("face_recognition", lambda: face_rec_path(self._rec_arg),
                           self.dlib.face_recognition_model_v1)

    def _haar_cascade(self):
        if self._haar is None:
            import cv2
            if not hasattr(cv2, "CascadeClassifier"):
                raise UserError("OpenCV >= 5 has no Haar cascades; install opencv-python-headless<5")
            xml = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
            self._haar = cv2.CascadeClassifier(str(xml))
            self.files["haar"] = {"file": str(xml), "sha256": sha256_of(xml)}
        return self._haar

    # -- analysis -----------------------------------------------------------------------------
    @staticmethod
    def _check(img: np.ndarray) -> np.ndarray:
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected H x W x 3 uint8 RGB, got {img.dtype} {img.shape}")
        return np.ascontiguousarray(img)

    def detect(self, img: np.ndarray) -> Face | None:
        """The largest face, by dlib HOG, else by the Haar cascade; None if neither finds one."""
        img = self._check(img)
        rects = list(self._detector(img, self.upsample))
        if rects:
            r = max(rects, key=lambda r: r.width() * r.height())
            return Face((r.left(), r.top(), r.right(), r.bottom()), "dlib-hog")
        if not self.haar_fallback:
            return None
        import cv2
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        found = self._haar_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        if len(found) == 0:
            return None
        x, y, w, h = max(found, key=lambda b: b[2] * b[3])
        return Face((int(x), int(y), int(x + w), int(y + h)), "opencv-haar")

    def _shape(self, img: np.ndarray, face: Face | None):
        """(checked image, dlib 68-point shape of ``face`` or of the largest face) or (image, None)."""
        img = self._check(img)
        face = face or self.detect(img)
        return img, (None if face is None else self.predictor(img, self.dlib.rectangle(*face.box)))

    def landmarks(self, img: np.ndarray, face: Face | None = None) -> np.ndarray | None:
        """``68 x 2`` (x, y) landmark coordinates of the largest face, or None without a face."""
        _, shape = self._shape(img, face)
        return None if shape is None else np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def descriptor(self, img: np.ndarray, face: Face | None = None) -> np.ndarray | None:
        """128-D dlib ResNet descriptor of the largest face (aligned by the 68-point shape), or None."""
        img, shape = self._shape(img, face)
        return None if shape is None else np.array(self.recognizer.compute_face_descriptor(img, shape),
                                                   dtype=np.float64)
