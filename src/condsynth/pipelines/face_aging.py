"""Face aging for end users (LDcGAN): a photo and a target age group -> the same photo with the face aged.

    pipe = FaceAgingPipeline.from_pretrained("ldcgan-faces64")      # bundled name, export, run or checkpoint
    out = pipe(photo, to="61-70")            # path or H x W (x 3) uint8; to: a group name, a list or "all"
    out.images["61-70"]                      # the photo at its own size, the face aged, the background untouched
    out.strip()                              # input + every asked group side by side
    out.save("old.png"); out.save_debug("debug/")   # masks f_A, contents f_C, predicted landmarks L*

A photo goes **detect -> align -> generate -> paste back** (condsynth.io.faces): dlib finds the faces
(the largest by default, ``face=N|"all"``), its 68 points align the face to the template the model was
trained with (stored with G), G runs at the model's size on the crop downsampled from ``crop_size``,
and Eq. 4.4 is applied again at ``crop_size`` with the upsampled f_A and f_C, so where f_A = 1 the
crop keeps the photo's own detail; the crop is pasted back with the feathered mask, and every pixel
outside that mask is the input's, bit for bit. ``aligned=True`` skips detection for inputs that are
already crops framed like the training images (the faces world), with their ``landmarks`` in pixels.
A grey photo is processed as RGB and returned grey (paste_back's luma).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from condsynth.data.utkface import AGE_GROUP_NAMES
from condsynth.errors import UserError
from condsynth.io.images import to_rgb_uint8, uint8_to_tensor
from condsynth.nn.blocks import resize
from condsynth.pipelines.base import Pipeline


def parse_group(text: str | int) -> int:
    """An age group name (``0-5`` ... ``80+``, thesis Table 4.1) -> its index; anything else is a UserError
    listing the ten names."""
    if isinstance(text, (int, np.integer)) and 0 <= int(text) < len(AGE_GROUP_NAMES):
        return int(text)
    name = str(text).strip()
    if name in AGE_GROUP_NAMES:
        return AGE_GROUP_NAMES.index(name)
    raise UserError(f"unknown age group '{text}': use one of {', '.join(AGE_GROUP_NAMES)}")


def parse_groups(to) -> list[int]:
    if isinstance(to, str) and to == "all":
        return list(range(len(AGE_GROUP_NAMES)))
    if isinstance(to, (list, tuple)):
        return [parse_group(t) for t in to]
    return [parse_group(to)]


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """1 x C x H x W in [-1, 1] -> H x W x C uint8."""
    return ((x[0].clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


@dataclass
class FaceAgingOutput:
    """``images[group]``: the whole photo per asked group; the debug parts are per group and per face."""
    input: np.ndarray
    images: dict[str, np.ndarray]
    crops: dict[str, list[np.ndarray]] = field(default_factory=dict)       # aged crops at crop_size
    masks: dict[str, list[np.ndarray]] = field(default_factory=dict)       # f_A at crop_size, uint8 (255 keeps)
    contents: dict[str, list[np.ndarray]] = field(default_factory=dict)    # f_C at crop_size
    landmarks: dict[str, list[np.ndarray]] = field(default_factory=dict)   # L* in photo pixels, 68 x 2
    source_landmarks: list[np.ndarray] = field(default_factory=list)       # L in photo pixels
    paste_masks: list[np.ndarray] = field(default_factory=list)            # in photo pixels, float in [0, 1]

    @property
    def image(self) -> np.ndarray:
        """The result for the first asked group."""
        return next(iter(self.images.values()))

    def strip(self, height: int = 256) -> np.ndarray:
        """The input and every asked group side by side, each scaled to ``height`` rows (at most its own)."""
        from PIL import Image
        tiles = [self.input, *self.images.values()]
        h = min(height, self.input.shape[0])
        out = []
        for t in tiles:
            rgb = to_rgb_uint8(t)
            w = max(1, round(rgb.shape[1] * h / rgb.shape[0]))
            out.append(np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR)))
        return np.concatenate(out, 1)

    def save(self, path: str | Path, strip: bool | None = None) -> Path:
        from condsynth.io.images import save_image
        strip = len(self.images) > 1 if strip is None else strip
        return save_image(path, self.strip() if strip else self.image)

    def save_debug(self, folder: str | Path) -> Path:
        """Per group and face: the aged photo, crop, f_A, f_C, and the crop with L (green) and L* (red) drawn."""
        from PIL import Image, ImageDraw

        from condsynth.io.images import save_image
        from condsynth.io.landmarks import save_landmarks
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, photo in self.images.items():
            save_image(folder / f"{name}.png", photo)
            for k, (crop, mask, content) in enumerate(zip(self.crops[name], self.masks[name], self.contents[name])):
                save_image(folder / f"{name}_face{k}_crop.png", crop)
                save_image(folder / f"{name}_face{k}_mask_fA.png", mask)
                save_image(folder / f"{name}_face{k}_content_fC.png", content)
                save_landmarks(folder / f"{name}_face{k}_landmarks.npy", self.landmarks[name][k])
                drawn = Image.fromarray(to_rgb_uint8(self.input))
                d = ImageDraw.Draw(drawn)
                r = max(1, self.input.shape[0] // 200)
                for pts, colour in ((self.source_landmarks[k], (0, 255, 0)), (self.landmarks[name][k], (255, 0, 0))):
                    for x, y in pts:
                        d.ellipse([x - r, y - r, x + r, y + r], fill=colour)
                save_image(folder / f"{name}_face{k}_landmarks.png", np.asarray(drawn))
        return folder


class FaceAgingPipeline(Pipeline):
    methods = ("ldcgan",)

    def check_method(self, method) -> None:
        if not callable(getattr(method, "age", None)):
            raise UserError(f"{self.source}: a '{method.name}' model does not age faces")
        if method.model_cfg.use_landmarks and method.G_L is None:
            raise UserError(f"{self.source}: the landmark predictor G_L was not loaded")
        self.size = int(method.model_cfg.image_size)

    def template(self):
        from condsynth.io.faces import template_from_points
        return template_from_points(self.method.G.template)

    @torch.no_grad()
    def age_crop(self, crop: np.ndarray, landmarks: np.ndarray, group: int):
        """One aligned crop (C x C x 3 uint8, landmarks 68 x 2 in its pixels) to ``group``: (aged crop, f_A, f_C,
        L* in crop pixels), all at the crop's size C."""
        c = crop.shape[0]
        hi = uint8_to_tensor(crop)[None].to(self.device)
        x = resize(hi, self.size)
        # the landmarks in the model's pixels, then [-1, 1] as the training data (x / (S - 1) * 2 - 1)
        lm = (np.asarray(landmarks, np.float64) + 0.5) * self.size / c - 0.5
        lm = torch.from_numpy(lm / (self.size - 1) * 2 - 1).float()[None].to(self.device)
        out, lm_t = self.method.age(x, torch.tensor([group], device=self.device), lm)
        mask, content = resize(out.mask, c).clamp(0, 1), resize(out.content, c).clamp(-1, 1)
        aged = mask * hi + (1 - mask) * content                                        # Eq. 4.4 at crop size
        pred = None
        if lm_t is not None:
            p = (lm_t[0].double().cpu().numpy() + 1) / 2 * (self.size - 1)
            pred = (p + 0.5) * c / self.size - 0.5
        return _to_uint8(aged), (mask[0, 0] * 255 + 0.5).to(torch.uint8).cpu().numpy(), _to_uint8(content), pred

    def __call__(self, image, to="all", *, face=None, aligned: bool = False, landmarks=None,
                 crop_size: int | None = None, min_face_size: int = 40, analyzer=None,
                 source: str = "image") -> FaceAgingOutput:
        from condsynth.io.faces import FaceAnalyzer, apply_matrix, find_faces, align_face, invert_matrix, \
            paste_back, paste_mask
        from condsynth.io.images import read_image
        if isinstance(image, (str, Path)):
            source, image = str(image), read_image(image)
        photo = np.asarray(image)
        if photo.dtype != np.uint8:
            raise UserError(f"{source}: expected a uint8 image, got {photo.dtype}")
        groups = parse_groups(to)
        rgb = to_rgb_uint8(photo)
        out = FaceAgingOutput(photo, {})
        if aligned:
            if landmarks is None and self.method.model_cfg.use_landmarks:
                raise UserError(f"{source}: an aligned crop needs its 68 landmarks (landmarks=)")
            faces = [(rgb, np.asarray(landmarks, np.float64) if landmarks is not None else None, None)]
        else:
            crop_size = crop_size or max(self.size, 256)
            fa = analyzer or FaceAnalyzer()
            found = find_faces(photo, fa, face, min_face_size, source)
            faces = []
            for i, f, lm in found:
                a = align_face(photo, lm, crop_size, self.template(), f, i)
                faces.append((a.image, a.crop_landmarks, a))
        out.source_landmarks = [lm if a is None else a.landmarks for _, lm, a in faces]
        out.paste_masks = []
        for _, _, a in faces:
            if a is not None:
                import cv2
                m = paste_mask(a)
                out.paste_masks.append(cv2.warpAffine(m, invert_matrix(a.matrix), (photo.shape[1], photo.shape[0]),
                                                      flags=cv2.INTER_LINEAR, borderValue=0))
        for g in groups:
            name = AGE_GROUP_NAMES[g]
            result = photo
            for key in ("crops", "masks", "contents", "landmarks"):
                getattr(out, key)[name] = []
            for crop, lm, a in faces:
                lm_in = lm if lm is not None else np.zeros((68, 2))
                aged, mask, content, pred = self.age_crop(crop, lm_in, g)
                result = aged if a is None else paste_back(result, aged, a)
                out.crops[name].append(aged)
                out.masks[name].append(mask)
                out.contents[name].append(content)
                out.landmarks[name].append(np.zeros((68, 2)) if pred is None else
                                           (pred if a is None else apply_matrix(invert_matrix(a.matrix), pred)))
            out.images[name] = result
        return out


@dataclass
class LandmarkPredictionOutput:
    landmarks: np.ndarray         # N x 68 x 2 in [-1, 1]


class LandmarkPredictorPipeline(Pipeline):
    """G_L alone: ``pipe(landmarks, to)`` with landmarks ``N x 68 x 2`` in [-1, 1] and target group(s)."""
    methods = ("ldcgan_landmarks",)

    @torch.no_grad()
    def __call__(self, landmarks, to) -> LandmarkPredictionOutput:
        lm = torch.as_tensor(np.asarray(landmarks, np.float32)).reshape(-1, 68, 2).to(self.device)
        groups = parse_groups(to)
        if len(groups) == 1:
            groups = groups * len(lm)
        if len(groups) != len(lm):
            raise UserError(f"{len(groups)} target groups for {len(lm)} landmark sets")
        t = torch.tensor(groups, device=self.device)
        return LandmarkPredictionOutput(self.method.predict(lm, t).cpu().numpy())


__all__ = ["FaceAgingOutput", "FaceAgingPipeline", "LandmarkPredictorPipeline", "parse_group", "parse_groups"]
