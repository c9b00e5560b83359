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
    score: float = float("nan")      # dlib's detection score (NaN for Haar)

    @property
    def size(self) -> int:
        """The side of the (square) detection box in pixels."""
        return int(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def area(self) -> int:
        return int((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


class FaceAnalyzer:
    """Detect faces, predict 68 landmarks, compute 128-D descriptors; models load on first use."""

    def __init__(self, landmarks_path: str | None = None, face_rec_path_: str | None = None,
                 upsample: int = 1, haar_fallback: bool = True, min_score: float = 0.3,
                 small_image: int = 800):
        self.dlib = _import_dlib()
        self._landmarks_arg, self._rec_arg = landmarks_path, face_rec_path_
        self.upsample = upsample
        self.haar_fallback = haar_fallback
        self.min_score = min_score     # dlib HOG detections below this are dropped (astronaut's suit patch: 0.12)
        self.small_image = small_image
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
        """H x W x 3 uint8 RGB; a grey H x W (or H x W x 1) uint8 image is repeated to RGB."""
        if img.dtype == np.uint8 and (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1)):
            img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected H x W x 3 uint8 RGB, got {img.dtype} {img.shape}")
        return np.ascontiguousarray(img)

    def detect_all(self, img: np.ndarray) -> list[Face]:
        """Every face, largest first: dlib HOG detections scoring at least ``min_score``, else the
        Haar cascade's. Without a detection at ``upsample``, a small image (longest side at most
        ``small_image``) is searched once more at twice the resolution, so that a tiny face is
        found (and refused by :func:`find_faces` with its size) rather than missed."""
        img = self._check(img)
        faces = self._hog(img, self.upsample)
        if not faces and max(img.shape[:2]) <= self.small_image:
            faces = self._hog(img, self.upsample + 1, min_score=0.0)     # tiny faces score low
        if not faces and self.haar_fallback:
            faces = self._haar_faces(img)
        return sorted(faces, key=lambda f: -f.area)

    def detect(self, img: np.ndarray) -> Face | None:
        """The largest face (see :meth:`detect_all`), or None."""
        faces = self.detect_all(img)
        return faces[0] if faces else None

    def _hog(self, img: np.ndarray, upsample: int, min_score: float | None = None) -> list[Face]:
        rects, scores, _ = self._detector.run(img, upsample, 0.0)
        floor = self.min_score if min_score is None else min_score
        return [Face((r.left(), r.top(), r.right(), r.bottom()), "dlib-hog", float(sc))
                for r, sc in zip(rects, scores) if sc >= floor]

    def _haar_faces(self, img: np.ndarray) -> list[Face]:
        import cv2
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        found = self._haar_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return [Face((int(x), int(y), int(x + w), int(y + h)), "opencv-haar") for x, y, w, h in found]

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


# ---------------------------------------------------------------------------------------------
# Alignment to a canonical template, the inverse warp and the feathered paste-back

TEMPLATE_FORMAT = "condsynth.face_template/1"
DEFAULT_TEMPLATE_FILE = Path(__file__).resolve().parent.parent / "assets" / "face-template68" / "template.json"
MIN_FACE_SIZE = 40


@dataclass(frozen=True)
class FaceTemplate:
    """Where the 68 points go in an aligned crop: ``points`` in units of the crop side (x, y), and
    the ``anchors`` (indices) that the similarity transform fits. It is data: every checkpoint
    that aligns faces stores :meth:`to_dict` and rebuilds it with :meth:`from_dict`."""

    points: tuple[tuple[float, float], ...]
    anchors: tuple[int, ...]
    name: str = ""

    def pixels(self, size: int) -> np.ndarray:
        """The template's ``68 x 2`` points for a ``size`` x ``size`` crop, in pixel coordinates."""
        return np.asarray(self.points, np.float64) * size

    def to_dict(self) -> dict:
        return {"format": TEMPLATE_FORMAT, "name": self.name, "points": [list(p) for p in self.points],
                "anchors": list(self.anchors)}

    @classmethod
    def from_dict(cls, d: dict, source: str = "face template") -> FaceTemplate:
        try:
            pts = np.asarray(d["points"], np.float64)
            anchors = tuple(int(i) for i in d.get("anchors", range(17, 68)))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{source}: not a {TEMPLATE_FORMAT} template (needs 'points': 68 x [x, y])") from None
        if d.get("format", TEMPLATE_FORMAT) != TEMPLATE_FORMAT or pts.shape != (68, 2) or not np.isfinite(pts).all():
            raise UserError(f"{source}: not a {TEMPLATE_FORMAT} template (points of shape {pts.shape})")
        if len(anchors) < 2 or min(anchors) < 0 or max(anchors) > 67:
            raise UserError(f"{source}: anchors must be at least two indices in 0..67")
        return cls(tuple(map(tuple, pts.tolist())), anchors, str(d.get("name", "")))

    @classmethod
    def load(cls, path: str | Path | None = None) -> FaceTemplate:
        """A template file (JSON); without a path the bundled one (``assets/face-template68``)."""
        import json
        path = Path(path) if path else DEFAULT_TEMPLATE_FILE
        if not path.is_file():
            raise UserError(f"{path}: face template not found")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: not valid JSON ({type(exc).__name__})") from None
        return cls.from_dict(doc, str(path))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, translation; no reflection) taking
    ``src`` points onto ``dst`` (Umeyama 1991), as a ``2 x 3`` matrix: ``dst ~ M @ [x, y, 1]``."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    cov = b.T @ a / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    r = u @ d @ vt
    var = (a ** 2).sum() / len(src)
    if var <= 0:
        raise UserError("landmarks are degenerate (all anchor points coincide)")
    scale = np.trace(np.diag(sig) @ d) / var
    m = np.zeros((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = md - m[:, :2] @ ms
    return m


def apply_matrix(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def invert_matrix(m: np.ndarray) -> np.ndarray:
    a = np.linalg.inv(m[:, :2])
    return np.concatenate([a, -(a @ m[:, 2])[:, None]], 1)


@dataclass
class AlignedFace:
    """One face cut out and aligned to a template, with what is needed to put it back."""
    image: np.ndarray           # size x size x 3 uint8, the aligned crop
    matrix: np.ndarray          # 2 x 3, original pixel -> crop pixel
    landmarks: np.ndarray       # 68 x 2 in the original photo
    size: int
    face: Face | None = None
    index: int = 0              # which face of the photo (0 = the largest)

    @property
    def crop_landmarks(self) -> np.ndarray:
        """The 68 points in crop pixels."""
        return apply_matrix(self.matrix, self.landmarks)


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise UserError(f"face tools take uint8 images, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] in (1, 3, 4):
        return np.ascontiguousarray(img[..., :3] if img.shape[2] >= 3 else np.repeat(img, 3, axis=2))
    raise UserError(f"face tools take H x W or H x W x 3 images, got shape {img.shape}")


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 128, template: FaceTemplate | None = None,
               face: Face | None = None, index: int = 0) -> AlignedFace:
    """Warp ``image`` so that its ``landmarks`` (68 x 2 pixels) fit ``template``'s anchors
    (similarity, least squares); bilinear, borders replicated. A grey image gives an RGB crop."""
    import cv2
    template = template or default_template()
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise UserError(f"landmarks must be 68 x 2 finite points, got shape {lm.shape}")
    a = list(template.anchors)
    m = similarity_transform(lm[a], template.pixels(size)[a])
    crop = cv2.warpAffine(_rgb(image), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return AlignedFace(crop, m, lm, size, face, index)


def paste_mask(aligned: AlignedFace, feather: float | None = None) -> np.ndarray:
    """The blend weights of the crop (``size x size`` float32 in [0, 1]): the convex hull of the
    68 points grown over the forehead, eroded by ``feather`` pixels and blurred by ``feather / 2``
    (default ``size / 32``), so it is exactly 1 well inside the face and exactly 0 near the crop's
    border."""
    import cv2
    s = aligned.size
    f = s / 32 if feather is None else float(feather)
    p = aligned.crop_landmarks
    brow_lift = (p[17:27] - p[27:31].mean(0)) * np.array([1.0, 0.0]) + p[17:27] \
        - np.array([0.0, 0.35 * (p[8, 1] - p[27, 1])])
    hull = cv2.convexHull(np.vstack([p, brow_lift]).astype(np.float32)).reshape(-1, 2)
    m = np.zeros((s, s), np.float32)
    cv2.fillPoly(m, [np.round(hull * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    if f > 0:
        k = max(1, int(round(f)))
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
        m = cv2.GaussianBlur(m, (0, 0), sigmaX=f / 2)
    m[m < 1 / 512] = 0
    m[m > 1 - 1 / 512] = 1
    return m


def paste_back(original: np.ndarray, crop: np.ndarray, aligned: AlignedFace, feather: float | None = None,
               mask: np.ndarray | None = None) -> np.ndarray:
    """Put an edited ``crop`` (the aligned crop's size, uint8) back into ``original`` at its
    resolution: inverse warp, blended by :func:`paste_mask`. Every pixel where the warped mask is 0
    is returned **unchanged** (bit-exact). A grey ``original`` (``H x W``) gets a grey result (the
    crop's BT.601 luma)."""
    import cv2
    orig = np.asarray(original)
    crop = np.asarray(crop)
    if crop.shape[:2] != (aligned.size, aligned.size):
        raise UserError(f"crop is {crop.shape[1]}x{crop.shape[0]}, but the face was aligned at "
                        f"{aligned.size}x{aligned.size}")
    h, w = orig.shape[:2]
    m = paste_mask(aligned, feather) if mask is None else np.asarray(mask, np.float32)
    inv = invert_matrix(aligned.matrix)
    back = cv2.warpAffine(_rgb(crop).astype(np.float32), inv, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mb = cv2.warpAffine(m, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mb[mb < 1 / 512] = 0
    grey = orig.ndim == 2 or (orig.ndim == 3 and orig.shape[2] == 1)
    base = orig.reshape(h, w, -1).astype(np.float32)
    if grey:
        back = (back @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    else:
        back = back[..., :base.shape[2]] if base.shape[2] <= 3 else np.concatenate(
            [back, base[..., 3:]], axis=2)
    blend = np.clip(base * (1 - mb[..., None]) + back * mb[..., None] + 0.5, 0, 255).astype(orig.dtype)
    out = np.where(mb[..., None] > 0, blend, orig.reshape(h, w, -1))
    return out.reshape(orig.shape)


_DEFAULT_TEMPLATE: FaceTemplate | None = None


def default_template() -> FaceTemplate:
    """The bundled template (``assets/face-template68/template.json``), read once."""
    global _DEFAULT_TEMPLATE
    if _DEFAULT_TEMPLATE is None:
        _DEFAULT_TEMPLATE = FaceTemplate.load()
    return _DEFAULT_TEMPLATE


def template_from_points(points) -> FaceTemplate:
    """The alignment template a model stores with its generator (68 x 2 points, a tensor or array),
    with the bundled template's anchors; the bundled template itself when the stored points are all
    zero (a buffer that was never filled)."""
    pts = np.asarray(points.detach().cpu().numpy() if hasattr(points, "detach") else points, np.float64)
    if not np.any(pts):
        return default_template()
    return FaceTemplate(tuple(map(tuple, pts.tolist())), default_template().anchors, "checkpoint")


def parse_face_choice(text: str | int | None) -> int | str | None:
    """``--face N|all`` (a CLI string) -> an index, ``"all"``, or None (the largest)."""
    if text is None or isinstance(text, int) or text == "all":
        return text
    try:
        n = int(text)
    except ValueError:
        raise UserError(f"--face must be a face number (0 = the largest) or 'all', got '{text}'") from None
    if n < 0:
        raise UserError(f"--face must be 0 or more (0 = the largest), got {n}")
    return n


def find_faces(image: np.ndarray, analyzer: FaceAnalyzer, face: int | str | None = None,
               min_size: int = MIN_FACE_SIZE, source: str = "image") -> list[tuple[int, Face, np.ndarray]]:
    """The faces to process as ``(index, Face, 68 x 2 landmarks)``, largest first: the largest
    (``face=None``), face ``N`` (0 = the largest) or ``"all"``. No face, a face number beyond the
    faces found, or a chosen face smaller than ``min_size`` pixels is a UserError naming the
    photo; with ``"all"``, faces below the minimum are skipped unless none is left."""
    img = _rgb(image)
    faces = analyzer.detect_all(img)
    if not faces:
        raise UserError(f"{source}: no face found (dlib HOG{' and OpenCV Haar' if analyzer.haar_fallback else ''})")
    face = parse_face_choice(face)
    if face == "all":
        chosen = [(i, f) for i, f in enumerate(faces) if f.size >= min_size]
        if not chosen:
            raise UserError(f"{source}: every face found is smaller than {min_size} pixels (largest "
                            f"{faces[0].size}x{faces[0].size}); the minimum face size is {min_size}")
    else:
        i = face or 0
        if i >= len(faces):
            raise UserError(f"{source}: --face {i} asked for, but {len(faces)} face"
                            f"{'s were' if len(faces) > 1 else ' was'} found (0 = the largest)")
        if faces[i].size < min_size:
            raise UserError(f"{source}: face {i} is {faces[i].size}x{faces[i].size} pixels, smaller than the "
                            f"minimum {min_size} pixels (min_face_size)")
        chosen = [(i, faces[i])]
    return [(i, f, analyzer.landmarks(img, f)) for i, f in chosen]


def align_faces(image: np.ndarray, analyzer: FaceAnalyzer, size: int = 128, template: FaceTemplate | None = None,
                face: int | str | None = None, min_size: int = MIN_FACE_SIZE, source: str = "image"
                ) -> list[AlignedFace]:
    """Detect, find the landmarks of and align the chosen face(s) (see :func:`find_faces`)."""
    return [align_face(image, lm, size, template, f, i)
            for i, f, lm in find_faces(image, analyzer, face, min_size, source)]


def cache_landmarks(files, analyzer: FaceAnalyzer, out: str | Path, min_size: int = 1, progress: bool = False) -> dict:
    """Detect the largest face of every image file and write :func:`~condsynth.io.landmarks.write_landmark_cache`'s
    file ``out`` (keys: file names relative to their common folder; no face -> listed in failures)."""
    from condsynth.io.images import read_image
    from condsynth.io.landmarks import write_landmark_cache
    files = [Path(f) for f in files]
    points, failures = {}, []
    for f in files:
        img = read_image(f)
        faces = analyzer.detect_all(img)
        faces = [x for x in faces if x.size >= min_size]
        if not faces:
            failures.append(f.name)
            continue
        points[f.name] = analyzer.landmarks(img, faces[0])
    write_landmark_cache(out, points, failures, meta={"detector": "dlib-hog/opencv-haar", "files": analyzer.files})
    return {"points": len(points), "failures": len(failures)}
