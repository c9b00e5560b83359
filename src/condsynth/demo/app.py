"""The web page of ``condsynth demo``: a Gradio app with a tab per method that can run here.

Everything the page writes (uploads and results) goes into one temporary folder that :func:`demo_session`
creates and removes; Gradio's own cache is pointed there too (``GRADIO_TEMP_DIR``). The page sends nothing
anywhere: Gradio's analytics are off, there is no public share link, the theme uses the system's fonts (no
font downloads), and it listens on localhost unless ``host`` says otherwise. A user's mistake shows as the
one-line message of the command line, in the page; the server goes on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from condsynth.demo.runner import (MAX_PAINT_SIDE, MAX_SAMPLES, MAX_STROKES, MAX_UPLOAD_BYTES, TRANSLATION_MODELS,
                                   DemoRunner, TabInfo)
from condsynth.errors import UserError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
SYSTEM_MONO = ["ui-monospace", "monospace"]


def import_gradio():
    """Gradio, with its analytics off, or a UserError naming the extra to install."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("GRADIO_SERVER_NAME", "127.0.0.1")
    try:
        import gradio
    except ImportError:
        raise UserError("the demo needs Gradio: pip install 'condsynth[demo]'") from None
    return gradio


@contextlib.contextmanager
def demo_session(workdir: str | Path | None = None):
    """A fresh temporary folder for uploads and results, removed afterwards however the demo ends."""
    folder = Path(tempfile.mkdtemp(prefix="condsynth-demo-", dir=workdir))
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(folder / "uploads")
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous
        shutil.rmtree(folder, ignore_errors=True)


def _guarded(gr, fn):
    """Run ``fn``; a UserError (the user's input) becomes a message in the page, not a traceback."""
    try:
        return fn()
    except UserError as exc:
        raise gr.Error(str(exc), title="Cannot run this input", print_exception=False) from None
    except MemoryError:
        raise gr.Error("not enough memory for this input: try a smaller image", print_exception=False) from None


def _card(gr, runner: DemoRunner, tab: TabInfo) -> None:
    with gr.Accordion("Model card", open=False):
        gr.Markdown(f"**What it cannot do.** {tab.limits}" if tab.limits else "")
        for name in tab.checkpoints:
            gr.Markdown(runner.model_card(name))


def build_app(runner: DemoRunner, share_nothing: bool = False):
    """The Blocks app: one tab per available method, an About tab saying what is missing and why."""
    gr = import_gradio()
    api = "private" if share_nothing else "public"
    tabs = runner.tabs()
    with gr.Blocks(title="condsynth demo", analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown("# condsynth\nConditional visual synthesis on your own photos, captions and speech, on this "
                    "computer's CPU. Nothing you upload leaves this machine.")
        for tab in tabs:
            if not tab.available:
                continue
            with gr.Tab(tab.title, id=tab.key, elem_id=f"tab-{tab.key}"):
                BUILDERS[tab.key](gr, runner, api)
                _card(gr, runner, tab)
        with gr.Tab("About", id="about", elem_id="tab-about"):
            missing = [f"- {t.missing}" for t in tabs if not t.available]
            gr.Markdown("Each tab runs a bundled checkpoint of the toolkit; its model card says what it was "
                        "trained on and what it measured.\n\n"
                        + ("**Not shown here:**\n" + "\n".join(missing) if missing else "Every method is available."))
    return app


def _paint_tab(gr, runner: DemoRunner, api: str) -> None:
    gr.Markdown("Paint a photo with brush strokes: the attention-aware reinforcement-learning painter "
                "(thesis chapter 6). Upload a photo and press **Paint**.")
    with gr.Row():
        with gr.Column():
            photo = gr.File(label="Photo", file_count="single", type="filepath", elem_id="paint-photo")
            preview = gr.Image(label="Your photo", interactive=False, elem_id="paint-preview")
            strokes = gr.Slider(10, MAX_STROKES, value=200, step=10, label="Strokes")
            size = gr.Slider(64, MAX_PAINT_SIDE, value=384, step=32, label="Long side of the painting (pixels)")
            seed = gr.Number(value=0, precision=0, label="Seed")
            button = gr.Button("Paint", variant="primary", elem_id="paint-run")
        with gr.Column():
            painting = gr.Image(label="Painting", interactive=False, format="png", elem_id="paint-result")
            animation = gr.Image(label="Progress (animated)", interactive=False, type="filepath",
                                 elem_id="paint-animation")
            summary = gr.Markdown(elem_id="paint-summary")
            downloads = gr.File(label="Downloads: SVG strokes, JSON parameters", file_count="multiple",
                                interactive=False, elem_id="paint-downloads")

    def show(path):
        if path is None:
            return None
        from condsynth.demo.runner import read_photo
        return _guarded(gr, lambda: str(path) if read_photo(path) is not None else None)

    def run(path, n, side, s, progress=gr.Progress()):
        out = _guarded(gr, lambda: runner.paint(path, n, side, s, progress=progress))
        return str(out["painting"]), str(out["animation"]), out["summary"], [str(out["svg"]), str(out["json"])]

    photo.change(show, photo, preview, api_visibility=api)
    button.click(run, [photo, strokes, size, seed], [painting, animation, summary, downloads],
                 api_visibility=api, concurrency_limit=1)


def _translate_tab(gr, runner: DemoRunner, api: str) -> None:
    gr.Markdown("Image-to-image translation on the procedural scenes world: label map -> photo (pix2pix, CycleGAN, "
                "pix2pixHD) and photo -> label map (CycleGAN). Upload an image or make an example scene.")
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown(list(TRANSLATION_MODELS), value=next(iter(TRANSLATION_MODELS)), label="Model")
            image = gr.File(label="Input image", file_count="single", type="filepath", elem_id="translate-input")
            with gr.Row():
                scene_seed = gr.Number(value=0, precision=0, label="Example scene")
                example = gr.Button("Make an example scene")
            seed = gr.Number(value=0, precision=0, label="Seed")
            button = gr.Button("Translate", variant="primary", elem_id="translate-run")
        with gr.Column():
            example_photo = gr.Image(label="The example's own photo", interactive=False, format="png")
            result = gr.Image(label="Result", interactive=False, format="png", elem_id="translate-result")
            summary = gr.Markdown()

    def make_example(s, chosen):
        out = _guarded(gr, lambda: runner.example_scene(s))
        wants_photo = TRANSLATION_MODELS[chosen][1] == "BtoA"
        return str(out["photo"] if wants_photo else out["labels"]), str(out["photo"] if not wants_photo else out["labels"])

    def run(path, chosen, s, progress=gr.Progress()):
        out = _guarded(gr, lambda: runner.translate(path, chosen, s, progress=progress))
        return str(out["image"]), out["summary"]

    example.click(make_example, [scene_seed, model], [image, example_photo], api_visibility=api)
    button.click(run, [image, model, seed], [result, summary], api_visibility=api, concurrency_limit=1)


def _text_tab(gr, runner: DemoRunner, api: str) -> None:
    gr.Markdown("Text to image with HfGAN (thesis chapter 3), trained on the synthetic shapes world: captions about "
                "one or two coloured shapes (circle, square, triangle, star, diamond), their size and position.")
    with gr.Row():
        with gr.Column():
            caption = gr.Textbox(value="a large red circle at the top", label="Caption", elem_id="t2i-caption")
            n = gr.Slider(1, MAX_SAMPLES, value=4, step=1, label="Images")
            seed = gr.Number(value=0, precision=0, label="Seed")
            button = gr.Button("Generate", variant="primary", elem_id="t2i-run")
        with gr.Column():
            gallery = gr.Gallery(label="Samples", columns=4, elem_id="t2i-result")
            summary = gr.Markdown()

    def run(text, k, s, progress=gr.Progress()):
        out = _guarded(gr, lambda: runner.text2image(text, k, s, progress=progress))
        return [str(p) for p in out["images"]], out["summary"]

    button.click(run, [caption, n, seed], [gallery, summary], api_visibility=api, concurrency_limit=1)


def _age_tab(gr, runner: DemoRunner, api: str) -> None:
    gr.Markdown("Face aging with LDcGAN (thesis chapter 4): the face in your photo at each of ten age groups. The "
                "face is found with dlib, aligned, generated and pasted back.")
    with gr.Row():
        with gr.Column():
            photo = gr.File(label="Face photo", file_count="single", type="filepath", elem_id="age-photo")
            button = gr.Button("Age", variant="primary", elem_id="age-run")
        with gr.Column():
            strip = gr.Image(label="Input and the ten groups", interactive=False, format="png", elem_id="age-result")
            gallery = gr.Gallery(label="Per group", columns=5)
            summary = gr.Markdown()

    def run(path, progress=gr.Progress()):
        out = _guarded(gr, lambda: runner.age(path, progress=progress))
        return str(out["strip"]), [(str(p), name) for p, name in out["groups"]], out["summary"]

    button.click(run, photo, [strip, gallery, summary], api_visibility=api, concurrency_limit=1)


def _talk_tab(gr, runner: DemoRunner, api: str) -> None:
    gr.Markdown("Audio-driven talking face with AVWnet (thesis chapter 5): one photo and a recording give a "
                "lip-synced 25 fps video with your speech as its sound.")
    with gr.Row():
        with gr.Column():
            photo = gr.File(label="Face photo", file_count="single", type="filepath", elem_id="talk-photo")
            audio = gr.Audio(label="Speech (record or upload)", sources=["microphone", "upload"], type="filepath")
            button = gr.Button("Make the video", variant="primary", elem_id="talk-run")
        with gr.Column():
            video = gr.Video(label="Talking face", interactive=False, elem_id="talk-result")
            summary = gr.Markdown()

    def run(face, speech, progress=gr.Progress()):
        out = _guarded(gr, lambda: runner.talk(face, speech, progress=progress))
        return str(out["video"]), out["summary"]

    button.click(run, [photo, audio], [video, summary], api_visibility=api, concurrency_limit=1)


BUILDERS = {"paint": _paint_tab, "translate": _translate_tab, "text2image": _text_tab, "age": _age_tab,
            "talk": _talk_tab}


def launch(app, host: str = "127.0.0.1", port: int | None = None, share_nothing: bool = False,
           block: bool = True, allowed: list[str] | None = None):
    """Serve ``app``; ``block`` False returns at once (tests), with the server running until ``app.close()``."""
    gr = import_gradio()
    if share_nothing and host not in LOOPBACK:
        raise UserError(f"--host {host}: --share-nothing serves this computer only (127.0.0.1)")
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO)
    try:
        return app.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
                          prevent_thread_lock=not block, show_error=True, max_file_size=MAX_UPLOAD_BYTES,
                          ssr_mode=False, mcp_server=False, pwa=False, theme=theme, allowed_paths=allowed,
                          footer_links=[] if share_nothing else ["gradio", "settings"])
    except OSError as exc:                  # a busy port or an address this computer does not have: the user's choice
        where = f"--port {port}" if port is not None else f"--host {host}"
        raise UserError(f"{where}: cannot listen on {host}:{port or 'default'} ({str(exc).split('. ')[0]}); "
                        "choose another with --port") from None
