"""``condsynth eval r-precision`` / ``eval vs``: text-image consistency of generated images with a DAMSM.

Inputs: a folder of generated images ``x.png`` and a folder of captions ``x.txt`` (the first line
is the caption the image was generated from), matched by name; and a DAMSM run, checkpoint or
export. Use an *evaluation* DAMSM trained separately from the one a generator was trained with
(R-precision overfits to the encoder in the loss; TISE). Scores are cosines of the DAMSM global
image feature and sentence feature ("VS (DAMSM-based)": not comparable with HDGAN's VS numbers).
"""

from __future__ import annotations

from pathlib import Path

import torch

from condsynth.errors import UserError
from condsynth.metrics.record import MetricRecord


def _pairs(images: Path, captions: Path) -> tuple[list[Path], list[str]]:
    from condsynth.data.captions import read_caption_file
    from condsynth.io.images import list_images
    files = list_images(images)
    if not files:
        raise UserError(f"{images}: no images")
    missing = [f.stem + ".txt" for f in files if not (captions / f"{f.stem}.txt").is_file()]
    if missing:
        raise UserError(f"{captions}: no caption file for {len(missing)} images: {', '.join(missing[:10])}"
                        f"{' ...' if len(missing) > 10 else ''}")
    caps = []
    for f in files:
        lines = read_caption_file(captions / f"{f.stem}.txt")
        if not lines:
            raise UserError(f"{captions / (f.stem + '.txt')}: empty caption file")
        caps.append(lines[0])
    return files, caps


def embed_pairs(pipe, images: Path, captions: Path, batch: int = 64):
    """``pipe``: a loaded DAMSM ``TextImagePipeline`` (the command loads it: metrics sit below pipelines)."""
    files, caps = _pairs(Path(images), Path(captions))
    codes, sents, unknown = [], [], 0
    for i in range(0, len(files), batch):
        out = pipe(captions=caps[i:i + batch], images=files[i:i + batch])
        codes.append(torch.from_numpy(out.image_code))
        sents.append(torch.from_numpy(out.sentence))
        unknown += sum(len(u) for u in out.unknown)
    return torch.cat(codes), torch.cat(sents), len(files), unknown


def run_text_image(metric: str, pipe, images, captions, *, candidates: int = 100, splits: int = 10,
                   seed: int = 0, split: str | None = None) -> MetricRecord:
    """``pipe``: the DAMSM's ``TextImagePipeline``, loaded by the command."""
    from condsynth.metrics.text_image import r_precision, vs_similarity
    codes, sents, n, unknown = embed_pairs(pipe, images, captions)
    notes = [f"DAMSM global image feature vs sentence feature, cosine; encoders from {pipe.source}",
             f"text encoder {pipe.method.model_cfg.text_encoder}, image encoder {pipe.method.model_cfg.image_encoder}",
             f"{unknown} caption words unknown to the DAMSM vocabulary (kept as <unk>)"]
    if metric == "r-precision":
        mean, std = r_precision(codes, sents, candidates=candidates, splits=splits, seed=seed)
        values = {"r_precision_mean": mean, "r_precision_std": std}
        notes.append(f"R = 1: own caption against {candidates - 1} captions of other images, drawn with the seed; "
                     f"mean and std over {splits} splits")
    else:
        mean, std = vs_similarity(codes, sents)
        values = {"vs_mean": mean, "vs_std": std}
        notes.append("VS (DAMSM-based): mean and std over all images; not comparable with HDGAN's VS models")
    return MetricRecord(metric=metric, values=values, num_samples=n, backend="damsm",
                        weights_file=str(pipe.source), resolution=pipe.method.data_cfg.image_size,
                        resize="to the DAMSM's data.image_size (bicubic)", split=split, seed=seed,
                        inputs={"images": str(images), "captions": str(captions)}, notes=notes)
