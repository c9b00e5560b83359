"""The face analyzer the face metrics use; it lives in :mod:`condsynth.io.faces` (data preparation
needs it too, and ``data`` may not import ``metrics``) and is re-exported here."""

from condsynth.io.faces import (  # noqa: F401 - re-exports
    FACE_REC_FILE,
    FACE_REC_SHA256,
    LANDMARKS68_FILE,
    LANDMARKS68_SHA256,
    Face,
    FaceAnalyzer,
    face_rec_path,
    landmarks68_path,
)
from condsynth.io.landmarks import MOUTH  # noqa: F401 - the 68-point table is io.landmarks

__all__ = ["FACE_REC_FILE", "FACE_REC_SHA256", "LANDMARKS68_FILE", "LANDMARKS68_SHA256", "Face", "FaceAnalyzer",
           "MOUTH", "face_rec_path", "landmarks68_path"]
