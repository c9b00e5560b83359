"""Export trained painting checkpoints as the bundled assets (src/condsynth/assets/painting/).

    python bench/bench_painting_export.py --renderer runs/painting-renderer-small \
        --agent runs/painting-agent-small [--half-renderer]

* renderer: ``renderer.*`` weights (float16 with --half-renderer; loaded back as float32) and the
  run's config, into ``assets/painting/renderer``.
* agent: the networks needed to paint (``actor.*``, ``attention.*``) and the run's config with
  ``model.renderer`` pointing at the bundled renderer, into ``assets/painting/agent``.
Both config.json files keep the source checkpoint and its step under ``exported_from``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from condsynth.engine.checkpoint import resolve_checkpoint
from condsynth.io.atomic import atomic_write_text
from condsynth.io.state import load_tensors, save_tensors

ASSETS = Path(__file__).resolve().parents[1] / "src" / "condsynth" / "assets" / "painting"


def _read(path):
    folder = Path(resolve_checkpoint(path)) if not (Path(path) / "config.json").is_file() else Path(path)
    meta = json.loads((folder / "config.json").read_text())
    return folder, meta, load_tensors(folder / "model.safetensors")


def export_renderer(src, half: bool) -> Path:
    folder, meta, w = _read(src)
    keep = {k: (v.half() if half and v.is_floating_point() else v) for k, v in w.items() if k.startswith("renderer.")}
    out = ASSETS / "renderer"
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / "model.safetensors", keep)
    conf = meta.get("config", meta)
    atomic_write_text(out / "config.json", json.dumps({
        "config": conf, "step": meta.get("step"), "dtype": "float16" if half else "float32",
        "exported_from": f"{folder}"}, indent=1))
    return out


def export_agent(src) -> Path:
    folder, meta, w = _read(src)
    keep = {k: v for k, v in w.items() if k.split(".")[0] in ("actor", "attention")}
    conf = json.loads(json.dumps(meta.get("config", meta)))
    conf["model"]["renderer"] = "condsynth/assets/painting/renderer"
    out = ASSETS / "agent"
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / "model.safetensors", keep)
    atomic_write_text(out / "config.json", json.dumps({
        "config": conf, "step": meta.get("step"), "exported_from": f"{folder}",
        "trained_with_renderer": meta.get("config", meta)["model"].get("renderer")}, indent=1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--renderer", default=None)
    ap.add_argument("--agent", default=None)
    ap.add_argument("--half-renderer", action="store_true")
    a = ap.parse_args(argv)
    if a.renderer:
        print("renderer ->", export_renderer(a.renderer, a.half_renderer))
    if a.agent:
        print("agent ->", export_agent(a.agent))


if __name__ == "__main__":
    main()
