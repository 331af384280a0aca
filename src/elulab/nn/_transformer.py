r"""Pre-LN Transformer blocks, residual FFN stacks and small character language models.

A pre-LN block (GPT-2, Xiong et al. 2020) normalises the input of each branch and
leaves the residual stream untouched:

.. math::
    x \leftarrow x + \mathrm{Attn}(\mathrm{LN}(x)), \qquad
    x \leftarrow x + \mathrm{FFN}(\mathrm{LN}(x)), \qquad
    \mathrm{FFN}(u) = W_2\, f(W_1 u + b_1) + b_2,

with causal multi-head self-attention computed by
:func:`torch.nn.functional.scaled_dot_product_attention` (``is_causal=True``) and ``f``
any activation of the registry (:func:`elulab.nn.get_activation`). The gradient reaching
block ``l`` is the identity path plus every later branch,
:math:`\partial L/\partial x_l = \partial L/\partial x_N \prod_{k \ge l}(I + J_k)`, and
:math:`f'` and :math:`f''` enter only through the branch Jacobians :math:`J_k`, each
behind a LayerNorm. :class:`ResidualFFN` is the same block without attention, for deep
stacks without attention.

Initialisation (``init="lecun"``, the default): every linear weight
:math:`\mathcal N(0, 1/\text{fan-in})` (so the FFN pre-activations have unit variance
after the LayerNorm, whatever the width), the output projection of every residual branch
(attention and FFN :math:`W_2`) further scaled by :math:`1/\sqrt{2N}` (GPT-2's depth
scaling, ``N`` blocks), biases 0, embeddings :math:`\mathcal N(0, 1)`. ``init="torch"``
keeps PyTorch's defaults.

References:
    | Attention Is All You Need (Vaswani et al., 2017), arXiv:1706.03762
    | Language Models are Unsupervised Multitask Learners (Radford et al., 2019), GPT-2
    | On Layer Normalization in the Transformer Architecture (Xiong et al., 2020),
    | arXiv:2002.04745
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._activations import get_activation

__all__ = [
    "CausalSelfAttention",
    "CharFFN",
    "CharTransformer",
    "FeedForward",
    "ResidualFFN",
    "TransformerBlock",
]

INITS = ("lecun", "torch")
Activation = str | type[nn.Module] | nn.Module | None


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class CausalSelfAttention(nn.Module):
    r"""Multi-head causal self-attention: position ``t`` attends to positions ``<= t``.

    .. math:: \mathrm{Attn}(u) = W_o\,[\mathrm{softmax}(Q_h K_h^\top/\sqrt{d_h} + M)\,V_h]_h,
        \quad M_{ts} = -\infty \text{ for } s > t,

    through :func:`torch.nn.functional.scaled_dot_product_attention` with
    ``is_causal=True``.

    Arguments:
        d_model: the width ``d``; divisible by ``n_heads``.
        n_heads: the number of heads.

    Shape:
        Input and output :math:`(B, T, d)`.

    Example:
        >>> attn = CausalSelfAttention(8, 2)
        >>> attn(torch.zeros(3, 5, 8)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        _positive("d_model", d_model), _positive("n_heads", n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    r"""The position-wise FFN :math:`W_2 f(W_1 u + b_1) + b_2`, ``f`` any registry entry.

    Arguments:
        d_model: input and output width.
        d_hidden: hidden width (commonly ``4 * d_model``).
        activation: a registry name, an ``nn.Module`` class or instance (see
            :func:`elulab.nn.get_activation`).

    Example:
        >>> FeedForward(4, 16, "elu")
        FeedForward(
          (fc1): Linear(in_features=4, out_features=16, bias=True)
          (act): ELU(alpha=1.0)
          (fc2): Linear(in_features=16, out_features=4, bias=True)
        )
    """

    def __init__(self, d_model: int, d_hidden: int, activation: Activation = "gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(_positive("d_model", d_model), _positive("d_hidden", d_hidden))
        self.act = get_activation(activation)
        self.fc2 = nn.Linear(d_hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ResidualFFN(nn.Module):
    r"""A pre-LN residual FFN block without attention: :math:`x + \mathrm{FFN}(\mathrm{LN}(x))`.

    Arguments:
        d_model: the width.
        d_hidden: the FFN's hidden width (default ``4 * d_model``).
        activation: the FFN activation (any registry entry, class or instance).

    Shape:
        Input and output :math:`(*, d)`.

    Example:
        >>> ResidualFFN(8, activation="smooth_elu")(torch.zeros(2, 8)).shape
        torch.Size([2, 8])
    """

    def __init__(
        self, d_model: int, d_hidden: int | None = None, activation: Activation = "gelu"
    ) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_hidden or 4 * d_model, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ffn(self.ln(x))


class TransformerBlock(nn.Module):
    r"""A pre-LN Transformer block: :math:`x + \mathrm{Attn}(\mathrm{LN}_1 x)`, then
    :math:`x + \mathrm{FFN}(\mathrm{LN}_2 x)`; see the module docstring.

    Arguments:
        d_model: the width.
        n_heads: attention heads (divide ``d_model``).
        d_hidden: the FFN's hidden width (default ``4 * d_model``).
        activation: the FFN activation (any registry entry, class or instance).

    Shape:
        Input and output :math:`(B, T, d)`; the output at position ``t`` depends on the
        inputs at positions ``<= t`` only.

    Example:
        >>> TransformerBlock(8, 2, activation="elu")(torch.zeros(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_hidden: int | None = None,
        activation: Activation = "gelu",
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_hidden or 4 * d_model, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


def _init_(model: nn.Module, n_blocks: int, init: str) -> None:
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if init == "torch":
        return
    residual_out = 1.0 / math.sqrt(2 * n_blocks)
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            std = 1.0 / math.sqrt(m.in_features)
            last = name.endswith(("attn.proj", "ffn.fc2"))
            nn.init.normal_(m.weight, 0.0, std * (residual_out if last else 1.0))
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)


class CharTransformer(nn.Module):
    r"""A character-level causal language model: embedding + position, N pre-LN blocks, LN,
    linear head.

    .. math:: h_0 = E[c_{1..T}] + P_{1..T}, \quad h_N = \mathrm{Block}_N \circ \cdots
        \circ \mathrm{Block}_1(h_0), \quad \mathrm{logits} = W\,\mathrm{LN}(h_N) + b.

    About :math:`12 N d^2` parameters in the blocks (``d_hidden = 4d``): ``d=128``,
    ``N=5`` gives 1.0M in all with a 65-symbol vocabulary and context 128.

    Arguments:
        vocab_size: symbols ``V``.
        context: the longest sequence ``T`` (learned positions).
        d_model: the width ``d``.
        n_blocks: the number of blocks ``N``.
        n_heads: attention heads.
        activation: the FFN activation (any registry entry, class or instance).
        d_hidden: the FFN's hidden width (default ``4 * d_model``).
        init: ``"lecun"`` (the module docstring) or ``"torch"`` (PyTorch's defaults).

    Shape:
        Input :math:`(B, T)` int64 codes, ``T <= context``; output :math:`(B, T, V)` logits
        for the next symbol at each position.

    Example:
        >>> torch.manual_seed(0) and None
        >>> lm = CharTransformer(65, 16, d_model=32, n_blocks=2, n_heads=4)
        >>> lm(torch.zeros(2, 10, dtype=torch.int64)).shape
        torch.Size([2, 10, 65])
        >>> sum(p.numel() for p in lm.parameters())
        30209
    """

    def __init__(
        self,
        vocab_size: int,
        context: int,
        d_model: int = 128,
        n_blocks: int = 4,
        n_heads: int = 4,
        activation: Activation = "gelu",
        d_hidden: int | None = None,
        init: str = "lecun",
    ) -> None:
        super().__init__()
        self.context = _positive("context", context)
        self.tok = nn.Embedding(_positive("vocab_size", vocab_size), d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, d_hidden, activation)
            for _ in range(_positive("n_blocks", n_blocks))
        )
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        _init_(self, n_blocks, init)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[-1]
        if t > self.context:
            raise ValueError(f"sequence length {t} exceeds the context {self.context}")
        h = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h))


class CharFFN(nn.Module):
    r"""A fixed-window character model on a deep residual FFN stack (no attention).

    The last ``context`` symbols are embedded, concatenated and projected to ``d``, then
    pass ``N`` :class:`ResidualFFN` blocks, a LayerNorm and a linear head that predicts
    the next symbol (Bengio et al.'s neural probabilistic language model, made deep):

    .. math:: h_0 = W_\text{in}\,[E c_{t-k+1}; \ldots; E c_t], \quad
        h_N = \mathrm{Res}_N \circ \cdots \circ \mathrm{Res}_1(h_0), \quad
        \mathrm{logits} = W\,\mathrm{LN}(h_N) + b.

    References:
        | A Neural Probabilistic Language Model (Bengio, Ducharme, Vincent, Jauvin, 2003),
        | JMLR 3

    Arguments:
        vocab_size: symbols ``V``.
        context: the window ``k``.
        d_model: the width ``d`` of the stack.
        n_blocks: the number of blocks ``N``.
        activation: the FFN activation (any registry entry, class or instance).
        d_embed: the embedding width per symbol (default 16).
        d_hidden: the FFN's hidden width (default ``4 * d_model``).
        init: ``"lecun"`` or ``"torch"``, as for :class:`CharTransformer`.

    Shape:
        Input :math:`(B, k)` int64 codes; output :math:`(B, V)` logits.

    Example:
        >>> CharFFN(65, 8, d_model=16, n_blocks=3)(torch.zeros(4, 8, dtype=torch.int64)).shape
        torch.Size([4, 65])
    """

    def __init__(
        self,
        vocab_size: int,
        context: int,
        d_model: int = 64,
        n_blocks: int = 6,
        activation: Activation = "gelu",
        d_embed: int = 16,
        d_hidden: int | None = None,
        init: str = "lecun",
    ) -> None:
        super().__init__()
        self.context = _positive("context", context)
        self.tok = nn.Embedding(_positive("vocab_size", vocab_size), _positive("d_embed", d_embed))
        self.proj = nn.Linear(context * d_embed, d_model)
        self.blocks = nn.ModuleList(
            ResidualFFN(d_model, d_hidden, activation)
            for _ in range(_positive("n_blocks", n_blocks))
        )
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        _init_(self, n_blocks, init)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.shape[-1] != self.context:
            raise ValueError(f"expected windows of {self.context} symbols, got {idx.shape[-1]}")
        h = self.proj(self.tok(idx).flatten(-2))
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h))
