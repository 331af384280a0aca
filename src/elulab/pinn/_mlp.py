r"""An MLP whose input derivatives come out of one forward pass (Taylor mode).

For a layer :math:`z = W h + b` followed by :math:`a = f(z)`, the value, the first
derivatives :math:`\partial_i` and the pure second derivatives :math:`\partial_i^2`
with respect to the network input :math:`x \in \mathbb{R}^d` propagate as

.. math::
    \partial_i z = W \partial_i h, \qquad \partial_i^2 z = W \partial_i^2 h,

.. math::
    \partial_i a = f'(z) \odot \partial_i z, \qquad
    \partial_i^2 a = f''(z) \odot (\partial_i z)^2 + f'(z) \odot \partial_i^2 z,

starting from :math:`h = x`, :math:`\partial_i h = e_i`, :math:`\partial_i^2 h = 0`; the
mixed terms :math:`\partial_i \partial_j a = f''(z) \odot \partial_i z \odot \partial_j z
+ f'(z) \odot \partial_i \partial_j z` on request. This is the second-order Taylor
("jet") arithmetic of Griewank and Walther (2008, ch. 13), with the activation's
closed-form :math:`f'` and :math:`f''` from :mod:`elulab.functional`. The value, the
``d`` tangents and the ``d`` second-order terms are stacked into one tensor, so each
layer is one matrix product. The parameter gradient of a loss built from the
derivatives is one plain ``backward`` (no double backward); for the fused activations
(the ELU family, tanh, sin, SiLU, GELU) each activation step has a hand-written backward
that uses the closed-form third derivative (docs/pinn.md writes it out).

At the kink of the ELU family (:math:`z = 0` exactly) the convention is torch's:
:math:`f'(0) = \alpha` (ELU), :math:`f''(0) = 0`, so ``taylor`` equals nested autograd
there too.

References:
    | Evaluating Derivatives: Principles and Techniques of Algorithmic Differentiation,
    | 2nd ed. (Griewank and Walther, 2008), SIAM, chapter 13 (Taylor propagation).

    | Physics-informed neural networks (Raissi, Perdikaris and Karniadakis, 2019),
    | J. Comput. Phys. 378, 686-707.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from ..functional import (
    SECOND_DERIVATIVE_NAMES,
    SELU_ALPHA,
    SELU_LAMBDA,
    activation_spec,
    normalize_activation_name,
)

__all__ = ["MLP", "TAYLOR_ACTIVATIONS", "Taylor", "activation_jet"]

#: Activations ``MLP.taylor`` accepts: those with closed-form f' and f''.
TAYLOR_ACTIVATIONS: tuple[str, ...] = SECOND_DERIVATIVE_NAMES

Jet = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class Taylor(NamedTuple):
    """What :meth:`MLP.taylor` returns.

    Arguments:
        u: the output, ``(N, out)``.
        du: the first derivatives :math:`\\partial u_k / \\partial x_i`, ``(N, out, in)``.
        d2u: the pure second derivatives :math:`\\partial^2 u_k / \\partial x_i^2`,
            ``(N, out, in)``; with ``mixed=True`` the full Hessian ``(N, out, in, in)``.
    """

    u: torch.Tensor
    du: torch.Tensor
    d2u: torch.Tensor


# Fused (f, f', f'') for the common activations: the shared transcendental is computed
# once. Each equals the functional table's function, derivative and second derivative
# (tested); the others fall back to the table's three functions.
# The ELU family at z = 0: f' has the negative branch's value (torch's: alpha for ELU),
# written so that its own derivative there is 0, torch's f''(0); f'' likewise has
# derivative 0 at 0 (torch's third derivative). So autograd through a jet (the first
# layer, the parameter gradient) agrees with nested autograd of torch's ELU at the kink.
def _elu_jet(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    em = torch.expm1(z.clamp(max=0))  # alpha = 1 (so CELU, alpha = 1, is the same)
    e = em + 1.0
    return torch.where(z > 0, z, em), torch.where(z < 0, e, 1.0), torch.where(z < 0, e, 0.0)


def _selu_jet(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    em = torch.expm1(z.clamp(max=0))
    la = SELU_LAMBDA * SELU_ALPHA
    e = la * (em + 1.0)
    f1 = torch.where(z < 0, e, torch.where(z == 0, z.new_full((), la), SELU_LAMBDA))
    return torch.selu(z), f1, torch.where(z < 0, e, 0.0)


def _selu_d3(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z < 0, SELU_LAMBDA * SELU_ALPHA * torch.exp(z.clamp(max=0)), 0.0)


def _tanh_jet(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = torch.tanh(z)
    d = 1.0 - t * t
    return t, d, -2.0 * t * d


def _sin_jet(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _silu_jet(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(z)
    ds = s * (1.0 - s)
    return z * s, s + z * ds, ds * (2.0 + z * (1.0 - 2.0 * s))


def _gelu_jet(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    phi = torch.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
    cdf = 0.5 * (1.0 + torch.erf(z * math.sqrt(0.5)))
    return z * cdf, cdf + z * phi, phi * (2.0 - z * z)


# Third derivatives, for the hand-written backward of _JetStep (the parameter gradient of
# a loss on d2u needs d f''/dz). They equal autograd of the jets above (tested).
def _elu_d3(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z < 0, torch.exp(z.clamp(max=0)), 0.0)


def _tanh_d3(z: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(z)
    return -2.0 * (1.0 - t * t) * (1.0 - 3.0 * t * t)


def _sin_d3(z: torch.Tensor) -> torch.Tensor:
    return -torch.cos(z)


def _silu_d3(z: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    ds = s * (1.0 - s)
    return ds * (1.0 - 2.0 * s) * (2.0 + z * (1.0 - 2.0 * s)) + ds * (1.0 - 2.0 * s - 2.0 * z * ds)


def _gelu_d3(z: torch.Tensor) -> torch.Tensor:  # -z phi(z) (4 - z^2)
    return -z * torch.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi)) * (4.0 - z * z)


_THIRD: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "elu": _elu_d3,
    "celu": _elu_d3,
    "selu": _selu_d3,
    "tanh": _tanh_d3,
    "sin": _sin_d3,
    "silu": _silu_d3,
    "gelu": _gelu_d3,
}


class _JetStep(torch.autograd.Function):
    r"""One hidden layer's activation on the stacked jet, with a hand-written backward.

    ``Z`` is ``(N, 1 + d + k, w)``: row 0 the pre-activation without its bias, rows
    ``1..d`` the tangents :math:`T`, the last ``k`` rows the pure second-order terms
    :math:`S` of the input coordinates ``lo .. lo + k - 1``. It returns the stacked
    :math:`[f(z);\ f' T;\ f' S + f'' T_k^2]`. Autograd of the same arithmetic keeps about
    a dozen full-size temporaries per layer; this saves ``Z`` and three (N, w) vectors,
    and its backward is six full-size operations:
    :math:`dZ = f' G`, :math:`dT_k \mathrel{+}= 2 f'' G_S T_k`,
    :math:`dz = f' g_0 + f'' \sum_{r \ge 1} (G Z)_r + f''' \sum (G_S T_k^2)`.
    """

    @staticmethod
    def forward(ctx, Z, bias, name: str, d: int, lo: int):  # type: ignore[override]
        z = Z[:, 0] + bias
        f, f1, f2 = _FUSED[name](z)
        k = Z.shape[1] - 1 - d
        H = f1[:, None] * Z
        H[:, 0] = f
        tk = Z.narrow(1, 1 + lo, k)
        H.narrow(1, 1 + d, k).addcmul_(f2[:, None] * tk, tk)
        ctx.save_for_backward(Z, z, f1, f2)
        ctx.meta = (name, d, lo, k)
        return H

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):  # type: ignore[override]
        Z, z, f1, f2 = ctx.saved_tensors
        name, d, lo, k = ctx.meta
        f3 = _THIRD[name](z)
        dZ = f1[:, None] * G
        tk, gs = Z.narrow(1, 1 + lo, k), G.narrow(1, 1 + d, k)
        gstk = gs * tk
        dZ.narrow(1, 1 + lo, k).addcmul_(gstk, f2[:, None], value=2.0)
        dz = G[:, 0] * f1 + f2 * (G[:, 1:] * Z[:, 1:]).sum(1) + f3 * (gstk * tk).sum(1)
        dZ[:, 0] = dz
        return dZ, dz.sum(0), None, None, None


_FUSED: dict[str, Jet] = {
    "elu": _elu_jet,
    "celu": _elu_jet,
    "selu": _selu_jet,
    "tanh": _tanh_jet,
    "sin": _sin_jet,
    "silu": _silu_jet,
    "gelu": _gelu_jet,
}


def activation_jet(name: str) -> Jet:
    """``z -> (f(z), f'(z), f''(z))`` for a registered activation, in closed form.

    Raises:
        ValueError: for an unknown activation or one without a closed-form second
            derivative, listing :data:`TAYLOR_ACTIVATIONS`.

    Example:
        >>> f, d1, d2 = activation_jet("elu")(torch.tensor([-1.0, 0.0, 1.0]))
        >>> d1.tolist(), d2.tolist()
        ([0.3678794503211975, 1.0, 1.0], [0.3678794503211975, 0.0, 0.0])
    """
    key = normalize_activation_name(name)
    if key in _FUSED:
        return _FUSED[key]
    spec = activation_spec(key)
    if spec.second is None:
        raise ValueError(
            f"taylor needs closed-form f' and f'' but activation {name!r} has none; "
            f"allowed: {', '.join(TAYLOR_ACTIVATIONS)}"
        )
    f, d1, d2 = spec.function, spec.derivative, spec.second
    return lambda z: (f(z), d1(z), d2(z))


class MLP(nn.Module):
    r"""A fully connected network ``in -> width (x depth) -> out`` for PINNs.

    ``depth`` hidden layers of ``width`` units with the activation after each, then a
    linear output layer; Glorot-normal weights and zero biases (DeepXDE's
    ``"Glorot normal"``). :meth:`forward` is the plain network; :meth:`taylor` adds the
    exact input derivatives in the same pass (the module docstring gives the recursion).

    Arguments:
        in_features: input dimension ``d`` (e.g. 2 for ``(x, t)``).
        out_features: output dimension.
        width: hidden units per layer.
        depth: number of hidden layers (>= 1).
        activation: a name of :data:`elulab.functional.ACTIVATION_NAMES` (default
            parameters, e.g. ``alpha = 1`` for ELU); :meth:`taylor` needs one of
            :data:`TAYLOR_ACTIVATIONS`.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = MLP(2, 1, width=8, depth=2, activation="elu").double()
        >>> u, du, d2u = net.taylor(torch.zeros(3, 2, dtype=torch.float64))
        >>> u.shape, du.shape, d2u.shape
        (torch.Size([3, 1]), torch.Size([3, 1, 2]), torch.Size([3, 1, 2]))
        >>> torch.equal(u, net(torch.zeros(3, 2, dtype=torch.float64)))
        True
    """

    def __init__(
        self, in_features: int, out_features: int, width: int, depth: int, activation: str = "tanh"
    ) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name, v in (("width", width), ("depth", depth)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        self.activation = normalize_activation_name(activation)
        self._f = activation_spec(self.activation).function
        sizes = [in_features, *([width] * depth), out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.in_features, self.out_features = in_features, out_features

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers[:-1]:
            h = self._f(layer(h))
        return self.layers[-1](h)

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"taylor: x must be a floating tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"taylor: x must have shape (N, {self.in_features}), got {tuple(x.shape)}"
            )

    def taylor(
        self, x: torch.Tensor, mixed: bool = False, second: Sequence[int] | None = None
    ) -> Taylor:
        """Output, first and second input derivatives in one forward pass.

        Arguments:
            x: inputs ``(N, in_features)``.
            mixed: also the mixed second derivatives: ``d2u`` is then the full Hessian
                ``(N, out, in, in)`` instead of its diagonal ``(N, out, in)``.
            second: the input coordinates whose pure second derivatives are wanted
                (default: all); ``d2u`` is then ``(N, out, len(second))`` in that
                order. Burgers needs only ``u_xx``: ``second=(0,)`` saves the ``u_tt``
                work. Not with ``mixed``.

        Returns:
            A :class:`Taylor` ``(u, du, d2u)``, differentiable in the parameters.

        Raises:
            ValueError: for an activation without closed-form f'' (listing the allowed
                ones), an ``x`` of the wrong shape, or a bad ``second``.
        """
        jet = activation_jet(self.activation)
        self._check(x)
        d = x.shape[1]
        dims = list(range(d)) if second is None else [int(i) for i in second]
        if second is not None and (mixed or not dims or not all(0 <= i < d for i in dims)):
            raise ValueError(
                f"taylor: second must list input coordinates in 0..{d - 1} (not with mixed), "
                f"got {second!r}"
            )
        first, *hidden, last = self.layers
        wt = first.weight.t()  # (d, w): the tangent of z along e_i is row i
        a, f1, f2 = jet(torch.addmm(first.bias, x, wt))
        t = f1[:, None, :] * wt  # (N, d, w)
        if mixed:
            s = f2[:, None, None, :] * (wt[:, None, :] * wt[None, :, :])  # (N, d, d, w)
        else:
            s = f2[:, None, :] * wt[dims].square()  # (N, k, w)
        k = len(dims)
        contiguous = dims == list(range(dims[0], dims[0] + k))

        def sel(v: torch.Tensor) -> torch.Tensor:  # the tangents of the `second` coordinates
            return v.narrow(1, dims[0], k) if contiguous else v[:, dims]

        if not mixed and contiguous and self.activation in _THIRD:
            # the fast path: one stacked (N, 1 + d + k, w) jet, one matrix product and one
            # _JetStep per hidden layer, the output layer's rows sliced at the end
            h = torch.cat((a[:, None, :], t, s), 1)
            for layer in hidden:
                h = _JetStep.apply(h @ layer.weight.t(), layer.bias, self.activation, d, dims[0])
            out = h @ last.weight.t()  # (N, 1 + d + k, out)
            u = out[:, 0] + last.bias
            return Taylor(u, out[:, 1 : 1 + d].transpose(1, 2), out[:, 1 + d :].transpose(1, 2))
        for layer in hidden:
            w = layer.weight.t()
            if mixed:
                z = torch.addmm(layer.bias, a, w)
                tz, sz = t @ w, s @ w
            else:  # one product per layer; split (not slicing) keeps the backward a cat
                z, tz, sz = torch.split(torch.cat((a[:, None, :], t, s), 1) @ w, [1, d, k], 1)
                z = z[:, 0] + layer.bias
            a, f1, f2 = jet(z)
            f1, f2 = f1[:, None, :], f2[:, None, :]
            if mixed:
                s = f2[:, None] * (tz[:, :, None, :] * tz[:, None, :, :]) + f1[:, None] * sz
            else:
                tk = tz if k == d else sel(tz)
                s = torch.addcmul(f1 * sz, f2, tk.square())
            t = f1 * tz
        w = last.weight.t()
        u = torch.addmm(last.bias, a, w)
        du = (t @ w).transpose(1, 2)  # (N, out, d)
        d2u = (s @ w).movedim(-1, 1)  # (N, out, k) or (N, out, d, d)
        return Taylor(u, du, d2u)
