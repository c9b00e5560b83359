"""Images from captions with a text-to-image GAN (HfGAN or the stacked baseline).

    pipe = TextToImagePipeline.from_pretrained("hfgan-shapes64")
    out = pipe(["a red circle on the left", "two blue stars"], n=8, seed=0)
    out.images[0][3]          # uint8 H x W x 3: the 4th sample of the first caption
    out.unknown, out.words    # per caption: the unknown words, the words the model read
    out.save("out/", attention=True)

The same caption with the same seed gives the same images, whatever else is in the call: every caption uses the
same ``n`` noise vectors (drawn from ``seed``) and its own seeded conditioning noise, so a row of captions with one
seed differs only by the text. Captions longer than ``data.words_num`` words keep the first ones
(``out.truncated``); an empty caption, or one with no known word, is a one-line error naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.data.text import tokenize
from condsynth.errors import UserError
from condsynth.pipelines.base import Pipeline, seeded
from condsynth.pipelines.text_image import save_with_vocabulary


@dataclass
class TextToImageOutput:
    captions: list[str]
    images: list[list[np.ndarray]]                        # per caption, n images H x W x 3 uint8
    words: list[list[str]] = field(default_factory=list)  # the words the model read (first words_num)
    unknown: list[list[str]] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    attention: list[list[np.ndarray]] = field(default_factory=list)   # per caption, n maps T x H x W (finest module)

    def grid(self) -> np.ndarray:
        """One row per caption, its samples side by side."""
        return np.concatenate([np.concatenate(row, axis=1) for row in self.images], axis=0)

    def save(self, out: str | Path, attention: bool = False) -> list[Path]:
        """``OUT/caption_III/sample_JJ.png``, ``OUT/grid.png`` and ``OUT/captions.json``; with ``attention``, each
        sample's word maps beside it in ``caption_III/attention_JJ.png`` (the image, then one heat map a word, in
        the order of ``captions.json``'s ``words``)."""
        from condsynth.io.images import save_image
        out = Path(out)
        written = []
        for i, row in enumerate(self.images):
            folder = out / f"caption_{i:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            for j, im in enumerate(row):
                written.append(save_image(folder / f"sample_{j:02d}.png", im))
                if attention and self.attention:
                    written.append(save_image(folder / f"attention_{j:02d}.png", attention_strip(im, self.attention[i][j])))
        written.append(save_image(out / "grid.png", self.grid()))
        index = [{"caption": c, "words": w, "unknown": u, "truncated": t}
                 for c, w, u, t in zip(self.captions, self.words, self.unknown, self.truncated)]
        (out / "captions.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
        return written


def attention_strip(image: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """The image, then each word's attention map (normalised to its maximum, nearest-upsampled) as a red heat map
    over the greyed image."""
    h, w = image.shape[:2]
    grey = image.mean(2, keepdims=True).repeat(3, 2) * 0.5
    tiles = [image]
    for m in maps:
        up = F.interpolate(torch.from_numpy(m)[None, None].float(), size=(h, w), mode="nearest")[0, 0].numpy()
        up = up / max(float(up.max()), 1e-8)
        heat = grey.copy()
        heat[..., 0] = np.clip(heat[..., 0] + 255 * up, 0, 255)
        tiles.append(heat.astype(np.uint8))
    return np.concatenate(tiles, axis=1)


class TextToImagePipeline(Pipeline):
    methods = ("hfgan", "stacked_t2i")

    def check_method(self, method) -> None:
        if getattr(method, "text_encoder", None) is None:
            raise UserError(f"{self.source}: this {method.name} has no text encoder (its DAMSM was not loaded)")

    def save_pretrained(self, out, half: bool = False, overwrite: bool = False, part: str | None = None):
        """As :meth:`Pipeline.save_pretrained`, with the vocabulary in the export's config (``data.vocab_words``), so
        that it generates without the training data."""
        return save_with_vocabulary(self, out, half, overwrite, part)

    @property
    def words_num(self) -> int:
        return self.method.data_cfg.words_num

    @torch.no_grad()
    def __call__(self, captions: list[str] | str, n: int = 1, seed: int = 0, sample_condition: bool = True,
                 attention: bool = False) -> TextToImageOutput:
        texts = [captions] if isinstance(captions, str) else list(captions)
        if not texts:
            raise UserError("no captions given")
        if not 1 <= n <= 1000:
            raise UserError(f"n = {n}: the number of images a caption must be 1 to 1000")
        m = self.method
        ids, lengths, unknown = m.encode_captions(texts)          # UserError for empty / all-unknown captions
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, m.model_cfg.z_dim, generator=gen).to(self.device)
        out = TextToImageOutput(texts, [], unknown=unknown)
        for i, text in enumerate(texts):
            tokens = tokenize(text)
            out.words.append(tokens[:self.words_num])
            out.truncated.append(len(tokens) > self.words_num)
            cap = ids[i:i + 1].expand(n, -1).to(self.device)
            length = lengths[i:i + 1].expand(n)
            with seeded(seed, self.device):
                result = m.generate(cap, length, z, sample_condition=sample_condition)
            images = ((result.images[-1].float().clamp(-1, 1) + 1) * 127.5).round().byte()
            out.images.append(list(images.permute(0, 2, 3, 1).cpu().numpy()))
            if attention:
                beta = result.attention[-1][:, :int(lengths[i])].float().cpu().numpy()
                out.attention.append(list(beta))
        return out
