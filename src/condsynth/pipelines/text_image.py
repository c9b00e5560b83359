"""Text and image embeddings from a trained DAMSM (for R-precision, VS similarity, HfGAN's conditioning).

    pipe = TextImagePipeline.from_pretrained("runs/damsm-shapes")
    out = pipe(captions=["a red circle on the left"], images=[uint8 array or path])
    out.sentence, out.words, out.image_code, out.regions, out.unknown, out.similarity

Captions go through the run's vocabulary: unknown words are reported (``out.unknown``), captions
with no known word are a one-line error, longer captions keep their first ``words_num`` words.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from condsynth.errors import UserError
from condsynth.pipelines.base import Pipeline


@dataclass
class EmbeddingOutput:
    sentence: np.ndarray | None = None        # B x D
    words: np.ndarray | None = None           # B x D x T (zero beyond each caption's length)
    lengths: list[int] = field(default_factory=list)
    unknown: list[list[str]] = field(default_factory=list)
    image_code: np.ndarray | None = None      # N x D
    regions: np.ndarray | None = None         # N x D x H x W
    similarity: np.ndarray | None = None      # N x B cosine of image codes and sentences, when both are given

    def save(self, path) -> None:
        from condsynth.io.state import save_tensors
        arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in
                  (("sentence", self.sentence), ("words", self.words), ("image_code", self.image_code),
                   ("regions", self.regions), ("similarity", self.similarity)) if v is not None}
        save_tensors(path, arrays)


def save_with_vocabulary(pipe: Pipeline, out, half: bool = False, overwrite: bool = False, part: str | None = None):
    """Save ``pipe`` as an export whose config carries its method's vocabulary (``data.vocab_words``)."""
    from condsynth.engine.checkpoint import save_pipeline
    data = dataclasses.replace(pipe.config.data, vocab_words=tuple(pipe.method.vocab.words))
    cfg = dataclasses.replace(pipe.config, data=data)
    return save_pipeline(pipe.method, cfg, out, half=half, source=pipe.source, overwrite=overwrite, part=part)


class TextImagePipeline(Pipeline):
    methods = ("damsm",)

    def check_method(self, method) -> None:
        if not hasattr(method, "encode_captions"):
            raise UserError(f"{type(method).__name__} cannot embed captions")

    def save_pretrained(self, out, half: bool = False, overwrite: bool = False, part: str | None = None):
        """As :meth:`Pipeline.save_pretrained`, with the vocabulary written into the export's config
        (``data.vocab_words``): the export then loads and embeds captions without the training dataset."""
        return save_with_vocabulary(self, out, half, overwrite, part)

    def _images(self, images) -> torch.Tensor:
        from condsynth.data.transforms import resize
        from condsynth.io.images import to_rgb_uint8, uint8_to_tensor
        size = self.method.data_cfg.image_size
        items = images if isinstance(images, (list, tuple)) else [images]
        return torch.stack([uint8_to_tensor(resize(to_rgb_uint8(im), size)) for im in items]).to(self.device)

    @torch.no_grad()
    def __call__(self, captions: list[str] | str | None = None, images=None, seed: int | None = None) -> EmbeddingOutput:
        m = self.method
        out = EmbeddingOutput()
        if captions is not None:
            texts = [captions] if isinstance(captions, str) else list(captions)
            ids, lengths, out.unknown = m.encode_captions(texts)
            words, sent = m.text_encoder(ids.to(self.device), lengths)
            out.words, out.sentence, out.lengths = words.cpu().numpy(), sent.cpu().numpy(), lengths.tolist()
        if images is not None:
            regions, code = m.image_encoder(self._images(images))
            out.regions, out.image_code = regions.cpu().numpy(), code.cpu().numpy()
        if out.sentence is not None and out.image_code is not None:
            out.similarity = (F.normalize(torch.from_numpy(out.image_code), dim=1)
                              @ F.normalize(torch.from_numpy(out.sentence), dim=1).T).numpy()
        return out
