"""AVWnet's networks (thesis ch. 5, §5.3-5.4; spec-avwnet-painting §2.4-2.5, 2.7 with the errata).

Shapes at the paper's widths (N_i = 128, N_a = N_l = 2 N_i, 128^2 frames; spec §2.3). Every size below is a
fraction of the frame side S, so the same code builds the 64^2 world model (code map S/16 = 4^2, attention at
S/4 and S/2 = 16^2 and 32^2, stage 0 at S/2 = 32^2):

* :class:`ImageEncoder` E_i: five convs with a residual block, padding 1 [S]: c1 7x7 s1 -> c2 3x3 s2 -> ResBlock
  = i^64 (N_i/2 @ S/2) -> c3 s2 = i^32 (N_i @ S/4) -> c4 s2 -> c5 s2 = i* (4 N_i @ S/16) [R / I:ATVGnet layout].
* :class:`AudioEncoder` E_a, one stream per frame with shared weights: stage 1 "five standard Conv layers (3x3, s1,
  p1) and two maxpool layers after the 2nd and 5th" [S, T001 line 1299]; channels 64-128-256-256-512 and pools k3
  s(1,2) / k3 s2 are ATVGnet's [I:ATVGnet] (errata: the spec tagged them [S]); 1 x 28 x 12 -> 512 x 12 x 2. Stage 2:
  FC 2048 + ReLU -> FC N_a + ReLU -> N_a x 1 x 1, then log2(S/16) "upsample operations" [S: three at 128] (nearest
  x2, conv 3x3, BN, ReLU) -> N_a @ S/16 (spec §2.4 [R]).
* E_l: :class:`~condsynth.nn.blocks.LandmarkEncoder` (Linear(136 -> (S/16)^2) + ReLU -> 1 x S/16 x S/16 -> conv 3x3
  -> N_l, BN, ReLU [I:ATVGnet]); l^-_k = E_l(L_k) - E_l(L*) (Eq. 5.1, in feature space [S]).
* Fusion h_k = i* ⊕ a_k ⊕ l^-_k (Eq. 5.1-5.2), a bottleneck conv 3x3 (-> N_i) + BN + ReLU [I:ATVGnet], then
  :class:`ConvGRU` (in N_i, hidden 4 N_i, kernel 3, dilation 2, dropout 0.5 [I:ATVGnet]); its state can be carried
  across calls (long audio in chunks, spec §2.10).
* Decoder (Eq. 5.4), weight-shared over frames: H_D = 4 ResBlocks @ 4N_i + ConvT -> 2N_i + ConvT -> N_i = v_0 @ S/4;
  A_0 = sigmoid(H_d0(E_l(L*) ⊕ E_l(L_k))), f_0 = A_0 ⊙ v_0 + (1 - A_0) ⊙ i^32; b^64 = H_dup1(f_0) (ResBlock +
  ConvT -> N_i/2 @ S/2); v_1 = H_res(b^64); A_1 = sigmoid(H_d1(...)) (Eq. 5.4 prints f_attn1 without the sigmoid:
  a typo, spec §2.13.4), f_1 = A_1 ⊙ v_1 + (1 - A_1) ⊙ i^64; b^128 = H_dup2(f_1) (ResBlock + ConvT -> N_i/4 @ S).
  A_s has as many channels as the feature it blends (spec §2.4 [R]; ``attention_channels: 1`` is ATVGnet's
  broadcast map); ``use_attention: false`` (Table 5.2 "w/o AM") sets A_0 = A_1 = 1.
* Output heads at each stage (Eq. 5.5): f_gray = sigmoid(conv 7x7), f_colour = tanh(conv 7x7),
  Ĩ^s = f_gray ⊙ f_colour + (1 - f_gray) ⊙ I^{s*} with the example face at that stage's size.
* :class:`ATNet`, the audio-to-landmark network used at test time (spec §2.7 [I:ATVGnet]): PCA-6 example landmark
  -> FC 256 -> FC 512; per-frame audio stage 1 -> FC 2048 -> FC 256; concat 768 -> 3-layer LSTM 256 -> FC 6.
* :class:`AVDiscriminator` D_s (spec §2.5): the joint trunk of ``nn.discriminators`` (presets ``avwnet_d0/d1``)
  judging single frames, an unconditional and an audio-conditioned logit (a D-side audio encoder: stage 1 + FC ->
  128, not shared with G), and the landmark regression head (FC 512 -> 136, plus L* as a residual [I:ATVGnet]).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from condsynth.nn.blocks import ConvNormAct, LandmarkEncoder, mask_blend
from condsynth.nn.discriminators import JOINT_D_PRESETS, JointDiscriminator, JointLogits
from condsynth.nn.resnet_generator import ResBlock

MFCC_ROWS, MFCC_COLS = 28, 12


def _up(in_ch: int, out_ch: int) -> nn.Sequential:
    """ConvT(k3, s2, p1, output_padding 1) + BN + ReLU: doubles the side (ATVGnet's decoder)."""
    layer = ConvNormAct(in_ch, out_ch, 3, 2, 1, transposed=True)
    layer[0].output_padding = (1, 1)
    return layer


def _res(ch: int, dropout: float = 0.0) -> ResBlock:
    """conv3x3-BN-ReLU(-dropout)-conv3x3-BN + skip (spec §2.4 decoder sections)."""
    return ResBlock(ch, norm="batch", padding="zero", dropout=dropout)


class AudioStage1(nn.Module):
    """Five 3x3 s1 p1 convs (+ BN + ReLU) with max-pools after the 2nd and the 5th [S, T001 line 1299]; channels and
    pool sizes ATVGnet's [I:ATVGnet]: ``B x 1 x 28 x 12`` -> ``B x c5 x 12 x 2``."""

    def __init__(self, channels=(64, 128, 256, 256, 512)):
        super().__init__()
        c = [1, *channels]
        layers = []
        for i in range(5):
            layers.append(ConvNormAct(c[i], c[i + 1], 3, 1, 1))
            if i == 1:
                layers.append(nn.MaxPool2d(3, (1, 2)))
            if i == 4:
                layers.append(nn.MaxPool2d(3, 2))
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            self.out_features = int(self.net(torch.zeros(1, 1, MFCC_ROWS, MFCC_COLS)).numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class AudioEncoder(nn.Module):
    """E_a: ``... x 1 x 28 x 12`` MFCC windows -> ``... x N_a x code x code`` (streams share the weights)."""

    def __init__(self, n_a: int, code: int, channels=(64, 128, 256, 256, 512), fc: int = 2048):
        super().__init__()
        self.stage1 = AudioStage1(channels)
        self.fc = nn.Sequential(nn.Linear(self.stage1.out_features, fc), nn.ReLU(True), nn.Linear(fc, n_a),
                                nn.ReLU(True))
        n_up = int(round(math.log2(code)))
        self.up = nn.Sequential(*[nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                ConvNormAct(n_a, n_a, 3, 1, 1)) for _ in range(n_up)])
        self.n_a = n_a

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        lead = a.shape[:-3]
        h = self.fc(self.stage1(a.reshape(-1, 1, MFCC_ROWS, MFCC_COLS)))
        h = self.up(h.view(-1, self.n_a, 1, 1))
        return h.view(*lead, *h.shape[1:])


class ImageEncoder(nn.Module):
    """E_i: ``B x 3 x S x S`` -> (i^64: N_i/2 @ S/2, i^32: N_i @ S/4, i*: 4N_i @ S/16)."""

    def __init__(self, n_i: int):
        super().__init__()
        h = n_i // 2
        self.c1 = ConvNormAct(3, h, 7, 1, 3, pad_mode="reflect")
        self.c2 = ConvNormAct(h, h, 3, 2, 1)
        self.res = _res(h)
        self.c3 = ConvNormAct(h, n_i, 3, 2, 1)
        self.c45 = nn.Sequential(ConvNormAct(n_i, 2 * n_i, 3, 2, 1), ConvNormAct(2 * n_i, 4 * n_i, 3, 2, 1))

    def forward(self, x: torch.Tensor):
        i64 = self.res(self.c2(self.c1(x)))
        i32 = self.c3(i64)
        return i64, i32, self.c45(i32)


class ConvGRUCell(nn.Module):
    """A convolutional GRU cell (ATVGnet's: kernel 3, dilation 2, "same" padding)."""

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, dilation: int = 2):
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.hidden = hidden
        self.gates = nn.Conv2d(in_ch + hidden, 2 * hidden, kernel, 1, pad, dilation=dilation)
        self.cand = nn.Conv2d(in_ch + hidden, hidden, kernel, 1, pad, dilation=dilation)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        r, z = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        n = torch.tanh(self.cand(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * n


class ConvGRU(nn.Module):
    """One unidirectional ConvGRU layer over ``B x T x C x H x W``; returns the outputs (with dropout) and the last
    state, which a later call can continue from (``state=``)."""

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, dilation: int = 2, dropout: float = 0.5):
        super().__init__()
        self.cell = ConvGRUCell(in_ch, hidden, kernel, dilation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        b, t, _, hh, ww = x.shape
        h = x.new_zeros(b, self.cell.hidden, hh, ww) if state is None else state
        outs = []
        for k in range(t):
            h = self.cell(x[:, k], h)
            outs.append(h)
        return self.dropout(torch.stack(outs, 1)), h


class AttentionDecoder(nn.Module):
    """H_d0 / H_d1 (Eq. 5.4): ``E_l(L*) ⊕ E_l(L_k)`` (2 N_l @ code) -> ConvT stages -> conv 3x3 -> sigmoid
    (spec §2.4 [I:ATVGnet]); ``n_up`` doublings, ``out`` channels."""

    def __init__(self, n_l: int, n_up: int, out: int):
        super().__init__()
        ch, layers = 2 * n_l, []
        for _ in range(n_up):
            layers.append(_up(ch, max(ch // 2, 1)))
            ch = max(ch // 2, 1)
        layers.append(nn.Conv2d(ch, out, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


class StageHead(nn.Module):
    """Eq. 5.5: f_gray = sigmoid(conv 7x7), f_colour = tanh(conv 7x7) [I:ATVGnet: 7x7, padding 3]."""

    def __init__(self, ch: int):
        super().__init__()
        self.gray = nn.Conv2d(ch, 1, 7, 1, 3)
        self.colour = nn.Conv2d(ch, 3, 7, 1, 3)

    def forward(self, b: torch.Tensor, example: torch.Tensor):
        gray, colour = torch.sigmoid(self.gray(b)), torch.tanh(self.colour(b))
        return mask_blend(gray, colour, example, mask_selects="content"), gray, colour     # Eq. 5.5


class TalkingOutput(NamedTuple):
    stage0: torch.Tensor        # Ĩ^0: B x T x 3 x S/2 x S/2 in [-1, 1]
    stage1: torch.Tensor        # Ĩ^1: B x T x 3 x S x S
    gray0: torch.Tensor         # f_gray^0: B x T x 1 x S/2 x S/2 (1 = generated colour, 0 = example face)
    gray1: torch.Tensor
    attention0: torch.Tensor    # A_0, B x T x C x S/4 x S/4 (ones without attention)
    attention1: torch.Tensor
    state: torch.Tensor         # the ConvGRU's last state, to continue from


LANDMARK_MOTIONS = ("features", "coordinates")     # l^-_k: Eq. 5.1 | ours (E_m on L_k - L*)


class AVWnetGenerator(nn.Module):
    """``forward(example, mfcc, landmarks, example_landmarks, state=None) -> TalkingOutput``.

    ``example`` B x 3 x S x S in [-1, 1]; ``mfcc`` B x T x 1 x 28 x 12; ``landmarks`` B x T x 68 x 2 and
    ``example_landmarks`` B x 68 x 2 normalised to [-1, 1]. T is free (16 in training; any length at inference)."""

    def __init__(self, image_size: int = 128, n_i: int = 128, n_a: int | None = None, n_l: int | None = None,
                 audio_channels=(64, 128, 256, 256, 512), audio_fc: int = 2048, rnn_hidden: int | None = None,
                 rnn_dropout: float = 0.5, res_dropout: float = 0.5, use_attention: bool = True,
                 attention_channels: str = "matched", landmark_motion: str = "features"):
        super().__init__()
        if landmark_motion not in LANDMARK_MOTIONS:
            raise ValueError(f"landmark_motion '{landmark_motion}': {' or '.join(LANDMARK_MOTIONS)}")
        if image_size % 16 or image_size < 32:
            raise ValueError(f"image_size {image_size}: a multiple of 16, at least 32 (the code map is S/16)")
        n_a = 2 * n_i if n_a is None else n_a
        n_l = 2 * n_i if n_l is None else n_l
        hid = 4 * n_i if rnn_hidden is None else rnn_hidden
        code = image_size // 16
        self.image_size, self.use_attention = image_size, use_attention
        self.E_i = ImageEncoder(n_i)
        self.E_a = AudioEncoder(n_a, code, audio_channels, audio_fc)
        self.E_l = LandmarkEncoder(68, n_l, code, in_channels=1, norm="batch", act="relu")
        # "coordinates" (ours): l^-_k = E_m(L_k - L*), a second encoder of E_l's shape on the motion itself, so the
        # mouth's few-hundredths of movement reach the fusion at unit scale (BN) instead of as a small difference
        # of two large feature maps (Eq. 5.1's "features" reading)
        self.E_m = (LandmarkEncoder(68, n_l, code, in_channels=1, norm="batch", act="relu")
                    if landmark_motion == "coordinates" else None)
        self.bottleneck = ConvNormAct(4 * n_i + n_a + n_l, n_i, 3, 1, 1)
        self.rnn = ConvGRU(n_i, hid, 3, 2, rnn_dropout)
        self.H_D = nn.Sequential(*[_res(hid, res_dropout) for _ in range(4)], _up(hid, 2 * n_i), _up(2 * n_i, n_i))
        one = attention_channels == "one"
        self.H_d0 = AttentionDecoder(n_l, 2, 1 if one else n_i)
        self.H_d1 = AttentionDecoder(n_l, 3, 1 if one else n_i // 2)
        self.H_dup1 = nn.Sequential(_res(n_i), _up(n_i, n_i // 2))
        self.H_res = _res(n_i // 2)
        self.H_dup2 = nn.Sequential(_res(n_i // 2), _up(n_i // 2, n_i // 4))
        self.head0, self.head1 = StageHead(n_i // 2), StageHead(n_i // 4)
        # MFCC normalisation (spec §2.2 [R]): per-coefficient statistics of the training set, set by the method
        self.register_buffer("mfcc_mean", torch.zeros(MFCC_COLS))
        self.register_buffer("mfcc_std", torch.ones(MFCC_COLS))

    def encode_example(self, example: torch.Tensor, example_landmarks: torch.Tensor):
        """What a long video reuses for every chunk: (i^64, i^32, i*, E_l(L*))."""
        return (*self.E_i(example), self.E_l(example_landmarks))

    def forward(self, example, mfcc, landmarks, example_landmarks, state=None, encoded=None) -> TalkingOutput:
        b, t = mfcc.shape[:2]
        i64, i32, i_star, l_star = encoded if encoded is not None else self.encode_example(example, example_landmarks)
        a = self.E_a((mfcc - self.mfcc_mean) / self.mfcc_std)                      # a_k, B x T x N_a x c x c
        l_k = self.E_l(landmarks)                                                    # E_l(L_k), B x T x N_l x c x c
        if self.E_m is None:
            l_diff = l_k - l_star[:, None]                                           # l^-_k (Eq. 5.1)
        else:
            l_diff = self.E_m(landmarks - example_landmarks[:, None])                # ours (landmark_motion)
        h = torch.cat([i_star[:, None].expand(-1, t, -1, -1, -1), a, l_diff], 2)    # h_k (Eq. 5.2)
        h = self.bottleneck(h.flatten(0, 1)).unflatten(0, (b, t))
        r, state = self.rnn(h, state)                                                # H_conv-rnn
        flat = lambda x: x[:, None].expand(-1, t, *x.shape[1:]).flatten(0, 1)      # noqa: E731
        v0 = self.H_D(r.flatten(0, 1))                                               # section 1
        pair = torch.cat([flat(l_star), l_k.flatten(0, 1)], 1)                       # E_l(L*) ⊕ E_l(L_k)
        if self.use_attention:
            a0, a1 = self.H_d0(pair), self.H_d1(pair)                                # Eq. 5.4 (sigmoid on both)
        else:                                                                        # "w/o AM": A = 1
            a0, a1 = v0.new_ones(v0.shape[0], 1, *v0.shape[-2:]), None
        f0 = mask_blend(a0, v0, flat(i32), mask_selects="content")                   # f_0
        b64 = self.H_dup1(f0)                                                        # section 2
        v1 = self.H_res(b64)                                                         # section 3
        if a1 is None:
            a1 = v1.new_ones(v1.shape[0], 1, *v1.shape[-2:])
        f1 = mask_blend(a1, v1, flat(i64), mask_selects="content")                   # f_1
        b128 = self.H_dup2(f1)                                                       # section 4
        s = self.image_size
        ex0 = F.interpolate(example, size=s // 2, mode="area")                       # I^{0*}
        img0, g0, _ = self.head0(b64, flat(ex0))
        img1, g1, _ = self.head1(b128, flat(example))
        u = lambda x: x.unflatten(0, (b, t))                                       # noqa: E731
        return TalkingOutput(u(img0), u(img1), u(g0), u(g1), u(a0), u(a1), state)


class AVDiscriminator(nn.Module):
    """D_s (spec §2.5): per-frame joint D with audio conditioning and a landmark regression head.

    ``forward(frames, mfcc, wrong_mfcc=None, example_landmarks=None)`` on ``N x 3 x s x s`` frames and their
    ``N x 1 x 28 x 12`` windows returns (:class:`JointLogits`, predicted landmarks N x 68 x 2 or None)."""

    def __init__(self, image_size: int, ndf: int = 64, cond_dim: int = 128, audio_channels=(64, 128, 256, 256, 512),
                 preset: str = "avwnet_d1", regression: bool = True):
        super().__init__()
        p = dict(JOINT_D_PRESETS[preset])
        p.update(image_size=image_size, ndf=ndf, cond_dim=cond_dim, n_aux=136 if regression else 0)
        p.pop("strides", None)
        self.d = JointDiscriminator(**p)
        self.audio = AudioStage1(audio_channels)
        self.audio_fc = nn.Sequential(nn.Linear(self.audio.out_features, cond_dim), nn.ReLU(True))
        self.register_buffer("mfcc_mean", torch.zeros(MFCC_COLS))
        self.register_buffer("mfcc_std", torch.ones(MFCC_COLS))

    def code(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.audio_fc(self.audio((mfcc - self.mfcc_mean) / self.mfcc_std))

    def forward(self, frames, mfcc, wrong_mfcc=None, example_landmarks=None, codes=None):
        """``codes``: ``(code(mfcc), code(wrong_mfcc) or None)`` computed once for the real and the fake frames of
        one batch (the same audio; :meth:`code`)."""
        if codes is None:
            codes = (self.code(mfcc), None if wrong_mfcc is None else self.code(wrong_mfcc))
        logits: JointLogits = self.d(frames, *codes)
        lm = None
        if logits.aux is not None:
            lm = logits.aux.view(-1, 68, 2)
            if example_landmarks is not None:                              # + L* as a residual [I:ATVGnet]
                lm = lm + example_landmarks
        return logits, lm


class ATNet(nn.Module):
    """AT-net (spec §2.7 [I:ATVGnet]): ``forward(example_coeffs B x k, mfcc B x T x 1 x 28 x 12) -> B x T x k`` PCA
    coefficients of the frames' landmarks; ``state`` (the LSTM's (h, c)) carries across chunks."""

    def __init__(self, k: int = 6, audio_channels=(64, 128, 256, 256, 512), audio_fc: int = 2048, audio_out: int = 256,
                 lm_hidden: int = 256, lm_out: int = 512, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.landmark = nn.Sequential(nn.Linear(k, lm_hidden), nn.ReLU(True), nn.Linear(lm_hidden, lm_out),
                                      nn.ReLU(True))
        self.stage1 = AudioStage1(audio_channels)
        self.audio_fc = nn.Sequential(nn.Linear(self.stage1.out_features, audio_fc), nn.ReLU(True),
                                      nn.Linear(audio_fc, audio_out), nn.ReLU(True))
        self.lstm = nn.LSTM(lm_out + audio_out, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, k)
        self.register_buffer("mfcc_mean", torch.zeros(MFCC_COLS))
        self.register_buffer("mfcc_std", torch.ones(MFCC_COLS))

    def forward(self, example_coeffs: torch.Tensor, mfcc: torch.Tensor, state=None):
        b, t = mfcc.shape[:2]
        a = self.audio_fc(self.stage1(((mfcc - self.mfcc_mean) / self.mfcc_std).flatten(0, 1))).view(b, t, -1)
        lm = self.landmark(example_coeffs)[:, None].expand(-1, t, -1)
        h, state = self.lstm(torch.cat([lm, a], 2), state)
        return self.out(h), state
