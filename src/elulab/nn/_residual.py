r"""Residual blocks, pre- and post-activation, and a ResNet builder of any depth.

A block maps :math:`x_l` to :math:`x_{l+1}` with a residual branch :math:`F` scaled by
:math:`s` (``branch_scale``):

* **pre-activation** (He et al. 2016b): :math:`x_{l+1} = x_l + s F(x_l)`,
  :math:`F = W_2 \circ f \circ N_2 \circ W_1 \circ f \circ N_1` (norm, activation, weight,
  twice; nothing after the addition). The backward pass is

  .. math:: \frac{\partial L}{\partial x_l} = \frac{\partial L}{\partial x_L}
      \prod_{k=l}^{L-1}\Big(I + s\frac{\partial F_k}{\partial x_k}\Big)
      = \frac{\partial L}{\partial x_L}\Big(I + \sum_{k} s\frac{\partial F_k}{\partial x_k}
      + \dots\Big),

  so the identity term carries :math:`\partial L/\partial x_L` to every block unchanged.
* **post-activation** (He et al. 2016a): :math:`x_{l+1} = f(z_l)`,
  :math:`z_l = x_l + s F(x_l)`, :math:`F = N_2 \circ W_2 \circ f \circ N_1 \circ W_1`.
  Then

  .. math:: \frac{\partial L}{\partial x_l} = \frac{\partial L}{\partial x_{l+1}}
      \operatorname{diag} f'(z_l)\Big(I + s\frac{\partial F_l}{\partial x_l}\Big),

  so the identity path from block :math:`L` down to :math:`l` is
  :math:`\prod_k \operatorname{diag} f'(z_k)`: for ELU :math:`f'(z) = e^z < 1` on
  :math:`z < 0`, for ReLU :math:`0`, and the product shrinks with depth.

``norm`` is ``"batch"`` (:class:`torch.nn.BatchNorm1d`/``2d``, :math:`\gamma = 1`,
:math:`\beta = 0`) or ``"none"``. Weights are Kaiming-normal (fan-in, gain
:math:`\sqrt 2`) for every activation, without bias where a norm follows, with zero
bias otherwise. Without a norm the branch is usually scaled down: the :class:`ResNet`
builder takes :math:`s = 1/\sqrt{\text{blocks}}` there (so
:math:`\mathbb{E}|x_L|^2` stays bounded: :math:`(1 + c/L)^L \le e^c`), and 1 with
batch norm.

Setting ``detach_branch = True`` on a block (or :func:`identity_path_only` on a model)
keeps the forward pass and cuts the branch out of the backward pass: the gradient then
flows through the identity path alone, exactly 1 per pre-activation block and
:math:`\operatorname{diag} f'(z_l)` per post-activation block.

References:
    | Deep Residual Learning for Image Recognition (He, Zhang, Ren, Sun, 2016),
    | arXiv:1512.03385.
    | Identity Mappings in Deep Residual Networks (He, Zhang, Ren, Sun, 2016),
    | arXiv:1603.05027.
    | Deep Residual Networks with Exponential Linear Unit (Shah, Kadam, Shah, Shinde,
    | Shingade, 2016), arXiv:1604.04112.

Example:
    >>> torch.manual_seed(0) and None
    >>> net = ResNet(6, width=16, in_features=8, num_classes=3, kind="post")
    >>> net(torch.randn(4, 8)).shape
    torch.Size([4, 3])
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ._activations import get_activation

__all__ = [
    "KINDS",
    "LAYERS",
    "NORMS",
    "ResNet",
    "ResidualBlock",
    "identity_path_only",
    "trunk_gain",
]

#: where the activation sits: before the weights (``"pre"``) or after the addition
KINDS: tuple[str, ...] = ("pre", "post")
#: normalisation in the branch
NORMS: tuple[str, ...] = ("batch", "none")
#: the weight layers: fully connected or 3x3 convolutions
LAYERS: tuple[str, ...] = ("linear", "conv")


def _choose(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _weight(layer: str, n_in: int, n_out: int, stride: int, bias: bool) -> nn.Module:
    if layer == "linear":
        m: nn.Module = nn.Linear(n_in, n_out, bias=bias)
    else:
        m = nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)
    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    if bias:
        nn.init.zeros_(m.bias)
    return m


def _norm(norm: str, layer: str, n: int) -> nn.Module:
    if norm == "none":
        return nn.Identity()
    return nn.BatchNorm1d(n) if layer == "linear" else nn.BatchNorm2d(n)


class ResidualBlock(nn.Module):
    r"""One residual block, pre- or post-activation (formulas in :mod:`elulab.nn._residual`).

    Arguments:
        width: features (``layer="linear"``) or channels (``"conv"``) of the input.
        kind: ``"pre"`` (:math:`x + sF(x)`) or ``"post"`` (:math:`f(x + sF(x))`).
        activation: a name of :data:`elulab.nn.ACTIVATIONS` (or a class), via
            :func:`elulab.nn.get_activation`.
        norm: ``"batch"`` or ``"none"``.
        layer: ``"linear"`` or ``"conv"`` (3x3, padding 1).
        out_width: output width (default ``width``); conv only when it differs, with
            ``stride`` 2: the shortcut subsamples and zero-pads the channels
            (parameter-free, He et al.'s option A).
        stride: 1 or 2 (conv only).
        branch_scale: :math:`s`, the factor on the branch (> 0).

    Shape:
        ``(N, width)`` for linear, ``(N, width, H, W)`` for conv.

    Example:
        >>> block = ResidualBlock(4, kind="pre", norm="none")
        >>> for p in block.parameters():
        ...     _ = torch.nn.init.zeros_(p)
        >>> x = torch.ones(2, 4)
        >>> torch.equal(block(x), x)
        True
    """

    def __init__(
        self,
        width: int,
        *,
        kind: str = "pre",
        activation: str | type[nn.Module] = "elu",
        norm: str = "batch",
        layer: str = "linear",
        out_width: int | None = None,
        stride: int = 1,
        branch_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.kind = _choose("kind", kind, KINDS)
        self.norm = _choose("norm", norm, NORMS)
        self.layer = _choose("layer", layer, LAYERS)
        out = width if out_width is None else out_width
        if min(width, out) < 1:
            raise ValueError(f"width and out_width must be >= 1, got {width}, {out}")
        if stride not in (1, 2) or (layer == "linear" and (stride != 1 or out != width)):
            raise ValueError(
                f"stride must be 1 or 2 and only a conv block may change width; got "
                f"stride {stride}, width {width} -> {out} ({layer})"
            )
        if out < width or (out != width and stride != 2):
            raise ValueError(f"a conv block may only widen with stride 2; got {width} -> {out}")
        if not (math.isfinite(branch_scale) and branch_scale > 0):
            raise ValueError(f"branch_scale must be a finite number > 0, got {branch_scale!r}")
        self.branch_scale, self.stride, self.pad = float(branch_scale), stride, out - width
        self.detach_branch = False
        bias = norm == "none"
        if kind == "pre":
            self.norm1, self.norm2 = _norm(norm, layer, width), _norm(norm, layer, out)
            self.w1 = _weight(layer, width, out, stride, bias)
            self.w2 = _weight(layer, out, out, 1, bias)
        else:
            self.w1, self.w2 = (
                _weight(layer, width, out, stride, bias),
                _weight(layer, out, out, 1, bias),
            )
            self.norm1, self.norm2 = _norm(norm, layer, out), _norm(norm, layer, out)
        self.act1 = get_activation(activation)
        self.act2 = get_activation(activation)  # pre: inside the branch; post: after the sum

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """The identity path: ``x``, or ``x`` subsampled by 2 and zero-padded (option A)."""
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, ::2, ::2]
        return F.pad(x, (0, 0, 0, 0, 0, self.pad))

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch :math:`F(x)` (without the factor :math:`s`)."""
        if self.kind == "pre":
            return self.w2(self.act2(self.norm2(self.w1(self.act1(self.norm1(x))))))
        return self.norm2(self.w2(self.act1(self.norm1(self.w1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fx = self.branch(x.detach() if self.detach_branch else x)
        z = self.shortcut(x) + self.branch_scale * fx
        return z if self.kind == "pre" else self.act2(z)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, norm={self.norm!r}, branch_scale={self.branch_scale:g}"


class ResNet(nn.Module):
    r"""A ResNet of ``blocks`` residual blocks: stem, blocks, head.

    * ``layer="linear"`` (the MLP variant, for fast gradient scans): ``Flatten``, a
      linear stem ``in_features -> width``, ``blocks`` blocks of ``width``, a linear head.
    * ``layer="conv"`` (images): a 3x3 stem conv ``in_channels -> channels[0]`` with
      ``stem_stride``, then ``len(channels)`` stages of ``blocks / len(channels)`` blocks
      (the first block of each later stage halves the resolution and widens to the
      stage's channels), global average pooling, a linear head. ``blocks = 3n`` with
      three stages is the CIFAR ResNet of ``6n + 2`` layers (20, 56, 110 for
      ``n = 3, 9, 18``).

    Pre-activation nets end the trunk with norm and activation before the head, as in
    He et al. 2016b; post-activation nets end with the last block's activation. The
    stem of a post-activation net is followed by norm and activation (the input of the
    first block is then an activation output, as in every later block).

    Arguments:
        blocks: the number of residual blocks (>= 1; conv: a multiple of the stages).
        width: linear only: features of the blocks.
        channels: conv only: channels per stage.
        in_features, in_channels: input size (linear: features after flattening).
        num_classes: outputs of the head.
        kind, activation, norm: as in :class:`ResidualBlock`.
        layer: ``"linear"`` or ``"conv"``.
        branch_scale: :math:`s` for every block; ``None``: 1 with batch norm,
            :math:`1/\sqrt{\text{blocks}}` without.
        stem_stride: conv only: stride of the stem (2 quarters the cost).

    Example:
        >>> net = ResNet(3, channels=(4, 8, 16), in_channels=1, layer="conv")
        >>> net(torch.zeros(2, 1, 28, 28)).shape, len(net.blocks)
        (torch.Size([2, 10]), 3)
    """

    def __init__(
        self,
        blocks: int,
        *,
        width: int = 64,
        channels: tuple[int, ...] = (16, 32, 64),
        in_features: int = 784,
        in_channels: int = 1,
        num_classes: int = 10,
        kind: str = "pre",
        activation: str | type[nn.Module] = "elu",
        norm: str = "batch",
        layer: str = "linear",
        branch_scale: float | None = None,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        kind, norm, layer = (
            _choose("kind", kind, KINDS),
            _choose("norm", norm, NORMS),
            _choose("layer", layer, LAYERS),
        )
        widths = (width,) if layer == "linear" else tuple(channels)
        if blocks < 1 or blocks % len(widths):
            raise ValueError(f"blocks must be a positive multiple of {len(widths)}, got {blocks}")
        if min(widths) < 1:
            raise ValueError(f"widths must be >= 1, got {widths}")
        s = branch_scale if branch_scale is not None else (1.0 if norm == "batch" else blocks**-0.5)
        per = blocks // len(widths)
        if layer == "linear":
            lin = nn.Linear(in_features, width)
            nn.init.kaiming_normal_(lin.weight, nonlinearity="linear")  # keeps E x^2
            nn.init.zeros_(lin.bias)
            stem: list[nn.Module] = [nn.Flatten(), lin]
        else:
            stem = [_weight("conv", in_channels, widths[0], stem_stride, norm == "none")]
        if kind == "post":
            stem += [_norm(norm, layer, widths[0]), get_activation(activation)]
        self.stem = nn.Sequential(*stem)
        kw = {"kind": kind, "activation": activation, "norm": norm, "layer": layer}
        self.blocks = nn.ModuleList()
        for i, w in enumerate(widths):
            for j in range(per):
                prev = widths[max(i - 1, 0)] if j == 0 else w
                stride = 2 if (j == 0 and i > 0) else 1
                self.blocks.append(
                    ResidualBlock(prev, out_width=w, stride=stride, branch_scale=s, **kw)
                )
        end: list[nn.Module] = []
        if kind == "pre":
            end += [_norm(norm, layer, widths[-1]), get_activation(activation)]
        if layer == "conv":
            end += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.head = nn.Sequential(*end, nn.Linear(widths[-1], num_classes))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The blocks alone: :math:`x_0 \\mapsto x_L`."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(self.stem(x)))


@contextlib.contextmanager
def identity_path_only(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every :class:`ResidualBlock` of ``model`` detaches its branch input.

    The forward values are unchanged; the backward pass follows the identity path only.

    Example:
        >>> torch.manual_seed(0) and None
        >>> net = ResNet(4, width=8, in_features=8, kind="pre")
        >>> x0 = torch.randn(5, 8, requires_grad=True)
        >>> with identity_path_only(net):
        ...     g = torch.autograd.grad(net.trunk(x0).sum(), x0)[0]
        >>> bool((g == 1).all())
        True
    """
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    before = [b.detach_branch for b in blocks]
    try:
        for b in blocks:
            b.detach_branch = True
        yield model
    finally:
        for b, old in zip(blocks, before, strict=True):
            b.detach_branch = old


def trunk_gain(
    net: ResNet, x0: torch.Tensor, head: torch.Tensor, *, identity: bool = False
) -> float:
    r"""The gradient gain of the blocks, :math:`\log_{10}(|\partial L/\partial x_0| / |G|)`.

    :math:`L = \langle G, x_L\rangle` with ``head`` :math:`= G`, so
    :math:`\partial L/\partial x_L = G` and the gain is that of the backward pass through
    ``net.trunk`` alone (in the mode ``net`` is in: batch statistics in train mode).

    Arguments:
        net: a :class:`ResNet`.
        x0: the input of the first block (e.g. ``net.stem(images)``).
        head: :math:`G`, the shape of the trunk's output.
        identity: follow the identity path only (:func:`identity_path_only`).

    Example:
        >>> net = ResNet(3, width=4, in_features=4, norm="none", kind="pre")
        >>> trunk_gain(net, torch.randn(6, 4), torch.randn(6, 4), identity=True)
        0.0
    """
    x0 = x0.detach().requires_grad_(True)
    with identity_path_only(net) if identity else contextlib.nullcontext():
        (g,) = torch.autograd.grad((head * net.trunk(x0)).sum(), x0)
    return math.log10(float(g.norm() / head.norm()))
