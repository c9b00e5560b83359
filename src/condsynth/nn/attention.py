"""SAGAN self-attention and the spectral-norm option (spec-hfgan-ldcgan.md §1.5; Zhang et al. 2019).

For x in R^{C x N} (N = H W positions):

    f(x) = W_f x,  g(x) = W_g x           1x1 convs, C -> C/8 (keys and queries)
    s_ij = f(x_i)^T g(x_j)
    beta_{j,i} = softmax_i(s_ij)          how much output position j attends to position i
    h(x) = W_h x                          1x1 conv, channels kept (values)
    o_j = sum_i beta_{j,i} h(x_i)
    y = gamma * o + x                     gamma a learned scalar, initialised to 0

gamma = 0 makes a freshly built block the identity, so the network first learns local structure and
lets attention in gradually (SAGAN §4). SAGAN also puts spectral norm on every layer of G and D;
:func:`spectral_norm_all` does that to any module.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


class SelfAttention(nn.Module):
    """SAGAN self-attention block over the spatial positions of a B x C x H x W feature map.

    ``key_channels`` defaults to C/8 (at least 1), as in SAGAN. ``forward(x, return_attention=True)``
    also returns the B x N x N attention map (row j: the weights of output position j over the inputs,
    summing to 1), for visualisation.
    """

    def __init__(self, channels: int, key_channels: int | None = None):
        super().__init__()
        key_channels = key_channels or max(1, channels // 8)
        self.f = nn.Conv2d(channels, key_channels, 1)    # keys
        self.g = nn.Conv2d(channels, key_channels, 1)    # queries
        self.h = nn.Conv2d(channels, channels, 1)        # values
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        b, c, hgt, wid = x.shape
        keys = self.f(x).flatten(2)                     # B x C' x N   (index i)
        queries = self.g(x).flatten(2)                  # B x C' x N   (index j)
        values = self.h(x).flatten(2)                   # B x C  x N
        scores = torch.bmm(queries.transpose(1, 2), keys)   # B x N_j x N_i: s_ij for each j, i
        beta = scores.softmax(dim=-1)                   # softmax over i
        out = torch.bmm(values, beta.transpose(1, 2)).view(b, c, hgt, wid)   # o_j = sum_i beta_ji h_i
        y = self.gamma * out + x
        return (y, beta) if return_attention else y


_SPECTRAL_NORM_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                        nn.ConvTranspose3d, nn.Linear)


def spectral_norm_all(module: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12) -> nn.Module:
    """Apply ``torch.nn.utils.parametrizations.spectral_norm`` to every conv, transposed conv and
    linear layer inside ``module`` (itself included); layers that already have it are skipped.

    Returns ``module`` (changed in place). The normalised weight is recomputed at each forward in
    training mode (one power iteration by default, as in SAGAN); in eval mode the last estimate is
    used. State-dict keys become ``<layer>.parametrizations.weight.original`` (+ ``_u``/``_v``
    buffers), so apply it before loading a checkpoint trained with it.
    """
    targets = [m for m in module.modules()
               if isinstance(m, _SPECTRAL_NORM_TYPES) and not parametrize.is_parametrized(m, "weight")]
    for m in targets:
        spectral_norm(m, n_power_iterations=n_power_iterations, eps=eps)
    return module
