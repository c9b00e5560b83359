"""68-point face landmarks: the one index table, the mirror permutation, and file formats.

**Index table** (iBUG 300-W / dlib / OpenPose face, 0-based). "Right" and "left" are the
subject's, so the right eye (36-41) is on the image's left:

=============  =======  ==============================================
region         points   what
=============  =======  ==============================================
``jaw``        0-16     chin contour, subject's right ear to left ear
``right_brow`` 17-21
``left_brow``  22-26
``nose``       27-35    bridge 27-30, lower nose 31-35
``right_eye``  36-41    outer corner 36, inner corner 39
``left_eye``   42-47    inner corner 42, outer corner 45
``mouth``      48-67    outer lips 48-59 (corners 48, 54), inner lips 60-67
=============  =======  ==============================================

:data:`MIRROR` is the permutation that relabels the landmarks of a horizontally flipped face:
``mirror_landmarks(points, width)`` equals the landmarks found on the flipped image.

**Files**: :func:`save_landmarks` / :func:`load_landmarks` for one face (``68 x 2``) or a
sequence (``T x 68 x 2``) as ``.npy`` or JSON (``{"format": "condsynth.landmarks68/1",
"points": ...}``); :func:`load_landmarks` also reads an OpenPose JSON file's face. OpenPose
files (``{"people": [{"pose_keypoints_2d": [x, y, c, ...], "face_keypoints_2d": ...}]}``, one
per frame) are read with :func:`read_openpose` and written with :func:`write_openpose`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from condsynth.errors import UserError
from condsynth.io.atomic import atomic_path, atomic_write_text

NUM_POINTS = 68
JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)
LEFT_BROW = slice(22, 27)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
NOSE_BRIDGE = slice(27, 31)
LOWER_NOSE = slice(31, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
EYES = slice(36, 48)
MOUTH = slice(48, 68)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)
FACE = slice(0, 68)

REGIONS: dict[str, slice] = {
    "jaw": JAW, "right_brow": RIGHT_BROW, "left_brow": LEFT_BROW, "brows": BROWS, "nose": NOSE,
    "nose_bridge": NOSE_BRIDGE, "lower_nose": LOWER_NOSE, "right_eye": RIGHT_EYE, "left_eye": LEFT_EYE,
    "eyes": EYES, "mouth": MOUTH, "outer_lips": OUTER_LIPS, "inner_lips": INNER_LIPS, "face": FACE,
}


def _mirror_permutation() -> np.ndarray:
    pairs = [(i, 16 - i) for i in range(8)]                                   # jaw
    pairs += [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]               # brows
    pairs += [(31, 35), (32, 34)]                                             # lower nose (27-30, 33 stay)
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]     # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]               # outer lips (51, 57 stay)
    pairs += [(60, 64), (61, 63), (65, 67)]                                   # inner lips (62, 66 stay)
    perm = np.arange(NUM_POINTS)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


MIRROR = _mirror_permutation()
MIRROR.setflags(write=False)


def region(name: str) -> slice:
    """The index range of a named region (see the module table)."""
    if name not in REGIONS:
        raise ValueError(f"landmark region must be one of {', '.join(REGIONS)}, got {name!r}")
    return REGIONS[name]


def mirror_landmarks(points, width: float) -> np.ndarray:
    """Landmarks of the horizontally flipped image (``x -> width - 1 - x``, relabelled by MIRROR).

    ``points``: ``68 x 2`` or ``T x 68 x 2`` pixel coordinates (x, y) of an image ``width`` wide.
    """
    p = _as_points(points, "points")
    out = p[..., MIRROR, :].copy()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def _as_points(points, what: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim not in (2, 3) or p.shape[-2:] != (NUM_POINTS, 2):
        raise ValueError(f"{what}: expected 68 x 2 or T x 68 x 2 landmarks, got shape {p.shape}")
    return p


# ---------------------------------------------------------------------------------------------
# condsynth's own files: .npy or JSON

FORMAT = "condsynth.landmarks68/1"


def save_landmarks(path: str | Path, points) -> Path:
    """Write ``68 x 2`` or ``T x 68 x 2`` landmarks as ``.npy`` (float64) or ``.json``, atomically."""
    path = Path(path)
    p = _as_points(points, str(path))
    if path.suffix.lower() == ".npy":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:  # a file object: np.save would append '.npy' to the temp name
                np.save(fh, p)
    elif path.suffix.lower() == ".json":
        atomic_write_text(path, json.dumps({"format": FORMAT, "points": np.round(p, 4).tolist()}) + "\n")
    else:
        raise UserError(f"{path}: landmarks are saved as .npy or .json")
    return path


def load_landmarks(path: str | Path) -> np.ndarray:
    """``68 x 2`` (or ``T x 68 x 2``) float64 landmarks from ``.npy``, condsynth JSON, a plain JSON
    list of points, or an OpenPose JSON file (the first person's first 68 face points)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: landmark file not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a readable .npy file ({exc})") from None
    elif suffix == ".json":
        doc = _read_json(path)
        if isinstance(doc, dict) and "people" in doc:
            face = read_openpose(path)["face"]
            if face is None or len(face) < NUM_POINTS:
                raise UserError(f"{path}: OpenPose file has no 68-point face for person 0")
            return face[:NUM_POINTS, :2].copy()
        arr = doc.get("points") if isinstance(doc, dict) else doc
        if arr is None:
            raise UserError(f"{path}: JSON has no 'points' (expected {FORMAT} or OpenPose)")
    else:
        raise UserError(f"{path}: landmarks are read from .npy or .json")
    try:
        return _as_points(arr, str(path))
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({type(exc).__name__})") from None


# ---------------------------------------------------------------------------------------------
# OpenPose JSON (one file per frame)

OPENPOSE_PARTS = {"pose": "pose_keypoints_2d", "face": "face_keypoints_2d",
                  "hand_left": "hand_left_keypoints_2d", "hand_right": "hand_right_keypoints_2d"}


def read_openpose(path: str | Path, person: int = 0) -> dict[str, np.ndarray | None]:
    """One person's keypoints from an OpenPose JSON file: ``{'pose', 'face', 'hand_left',
    'hand_right'}``, each ``K x 3`` (x, y, confidence) or None when the file has none.

    BODY_25 gives 25 pose points, COCO 18; OpenPose faces have 70 points (the 68 plus two pupils).
    A file without that person is a UserError (OpenPose writes ``"people": []`` for a frame
    where it found nobody).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: OpenPose file not found")
    doc = _read_json(path)
    people = doc.get("people") if isinstance(doc, dict) else None
    if not isinstance(people, list):
        raise UserError(f"{path}: not an OpenPose file (no 'people' list)")
    if not 0 <= person < len(people):
        raise UserError(f"{path}: no person {person} (the file has {len(people)})")
    out = {}
    for name, key in OPENPOSE_PARTS.items():
        flat = people[person].get(key) or []
        if len(flat) % 3:
            raise UserError(f"{path}: '{key}' has {len(flat)} numbers, not a multiple of 3 (x, y, confidence)")
        out[name] = np.asarray(flat, np.float64).reshape(-1, 3) if flat else None
    return out


def write_openpose(path: str | Path, *, pose=None, face=None, hand_left=None, hand_right=None) -> Path:
    """Write one person as OpenPose JSON (version 1.3), atomically.

    Each part is ``K x 3`` (x, y, confidence) or ``K x 2`` (confidence 1 is added); a ``68 x 2``
    face is written as 68 points (OpenPose itself writes 70, with the pupils).
    """
    person: dict[str, list] = {"person_id": [-1]}
    for name, arr in (("pose", pose), ("face", face), ("hand_left", hand_left), ("hand_right", hand_right)):
        flat: list[float] = []
        if arr is not None:
            a = np.asarray(arr, np.float64)
            if a.ndim != 2 or a.shape[1] not in (2, 3):
                raise ValueError(f"{name}: expected K x 2 or K x 3 keypoints, got shape {a.shape}")
            if a.shape[1] == 2:
                a = np.concatenate([a, np.ones((len(a), 1))], axis=1)
            flat = [round(float(v), 4) for v in a.reshape(-1)]
        person[OPENPOSE_PARTS[name]] = flat
        person[OPENPOSE_PARTS[name].replace("_2d", "_3d")] = []
    path = Path(path)
    atomic_write_text(path, json.dumps({"version": 1.3, "people": [person]}) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# The landmark cache of a dataset: one .npz for a folder of images

CACHE_FORMAT = "condsynth.landmark_cache/1"


def write_landmark_cache(path: str | Path, points: dict[str, np.ndarray], failures: list[str] | None = None,
                         meta: dict | None = None) -> Path:
    """Write ``{file name: 68 x 2}`` landmarks and the names where detection failed as one ``.npz``
    (no pickles: names are a unicode array), atomically. ``meta`` (JSON) records how they were made."""
    path = Path(path)
    names = sorted(points)
    arr = np.stack([_as_points(points[n], n) for n in names]) if names else np.zeros((0, NUM_POINTS, 2))
    header = json.dumps({"format": CACHE_FORMAT, **(meta or {})})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, names=np.array(names, dtype=np.str_), points=arr.astype(np.float32),
                     failures=np.array(sorted(failures or []), dtype=np.str_), meta=np.array(header))
    return path


def read_landmark_cache(path: str | Path) -> tuple[dict[str, np.ndarray], list[str], dict]:
    """``({file name: 68 x 2 float64}, failures, meta)`` from :func:`write_landmark_cache`'s file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: landmark cache not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            names, pts, failures = z["names"].tolist(), z["points"].astype(np.float64), z["failures"].tolist()
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable landmark cache ({type(exc).__name__})") from None
    if meta.get("format") != CACHE_FORMAT or pts.shape != (len(names), NUM_POINTS, 2):
        raise UserError(f"{path}: not a {CACHE_FORMAT} file (points {pts.shape} for {len(names)} names)")
    return dict(zip(names, pts)), failures, meta
