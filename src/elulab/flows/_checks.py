r"""Correctness checks of bijections: inverse round trips and log-dets against autograd.

One table for every bijection of :mod:`elulab.flows` (and any other
:class:`torch.distributions.Transform`), used by the tests and by the ``elulab`` C7
experiment (``elu_flows``) alike:

* :func:`bijection_errors`: for one transform ``f`` and inputs ``x``, the x-space round
  trip :math:`\max |f^{-1}(f(x)) - x|`, the y-space round trip (backward error)
  :math:`\max |f(f^{-1}(y)) - y| / \max(1, |y|)` and the log-det error
  :math:`\max |\log|\det J_f(x)| - \log|\det J^{\mathrm{autograd}}(x)||`;
* :func:`bijection_table`: those rows for several transforms and dtypes;
* :func:`flow_logdet_errors`: a composed flow's log-det, layer by layer and whole,
  against the ``slogdet`` of ``torch.autograd.functional.jacobian``;
  :func:`random_flow_logdet_errors` runs it on an untrained flow with random weights.

The references are independent of the formulas under test: autograd differentiates
the forward map only, never the closed-form log-det.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.distributions import ComposeTransform, Transform

from ._models import make_flow

__all__ = [
    "bijection_errors",
    "bijection_table",
    "flow_logdet_errors",
    "random_flow_logdet_errors",
]

_DTYPES = (torch.float32, torch.float64)


def _autograd_logdet_error(t: Transform, x: torch.Tensor, y: torch.Tensor) -> float:
    """Largest |closed-form log-det - autograd log-det| where the reference is finite."""
    ladj = t.log_abs_det_jacobian(x, y).detach()
    xg = x.detach().clone().requires_grad_(True)
    if t.domain.event_dim == 0:  # diagonal Jacobian: the derivative of each coordinate
        (deriv,) = torch.autograd.grad(t(xg).sum(), xg)
        ok = deriv > 0  # float32 derivatives underflow to 0 far left (log would be -inf)
        err = (ladj[ok] - torch.log(deriv[ok])).abs()
        return float(err.max()) if err.numel() else float("nan")
    # event_dim 1: rows are independent events, so d = D backward passes give every
    # row's Jacobian (J[..., j, :] = grad of y_j)
    yg = t(xg)
    rows = [
        torch.autograd.grad(yg[..., j].sum(), xg, retain_graph=True)[0] for j in range(x.shape[-1])
    ]
    _, ref = torch.linalg.slogdet(torch.stack(rows, dim=-2))
    err = (ladj - ref)[torch.isfinite(ref)].abs()
    return float(err.max()) if err.numel() else float("nan")


def bijection_errors(t: Transform, x: torch.Tensor) -> dict[str, float]:
    r"""Round-trip and log-det errors of the bijection ``t`` at the points ``x``.

    With :math:`y = f(x)`, restricted to the points whose image lies in ``t.codomain``
    (an ELU output rounded onto :math:`-\alpha` has no inverse):

    .. math:: e_x = \max |f^{-1}(y) - x|, \qquad
        e_y = \max \frac{|f(f^{-1}(y)) - y|}{\max(1, |y|)}, \qquad
        e_{\log} = \max \bigl| \log|\det J_f(x)| - \log|\det J^{\mathrm{ag}}(x)| \bigr|

    where :math:`J^{\mathrm{ag}}` is autograd's Jacobian of the forward map: for an
    elementwise transform (event dimension 0) its diagonal, one derivative per
    coordinate; for event dimension 1 the full ``(D, D)`` Jacobian of each row, by
    :math:`D` backward passes (so the rows of ``x`` must be independent events). Points
    where the reference is not finite (a float32 derivative underflowing to 0) are left
    out of :math:`e_{\log}`. :math:`e_x` carries the condition number of the inverse
    (ELU's is :math:`e^{-x}/\alpha` on the left); :math:`e_y` is the backward error,
    a few roundoffs for a correct inverse. A transform with a cache is checked without it.

    Arguments:
        t: the transform (event dimension 0 or 1).
        x: the points, of ``t``'s dtype; ``(N,)`` or ``(N, D)``.

    Returns:
        ``roundtrip_x``, ``roundtrip_y_rel``, ``logdet_err`` (nan if no point is
        usable) and ``boundary_fraction``, the share of points (or rows) whose image
        is outside the codomain.

    Example:
        >>> from elulab.flows import ELUTransform
        >>> x = torch.linspace(-5.0, 5.0, 101, dtype=torch.float64)
        >>> e = bijection_errors(ELUTransform(1.0), x)
        >>> e["roundtrip_y_rel"] < 1e-15, e["logdet_err"] < 1e-15, e["boundary_fraction"]
        (True, True, 0.0)
    """
    if t.domain.event_dim not in (0, 1):
        raise ValueError(f"bijection_errors: event dimension must be 0 or 1, got {t!r}")
    if t._cache_size:  # a cache would hand back x itself
        t = t.with_cache(0)
    with torch.no_grad():
        y = t(x)
        keep = t.codomain.check(y)
        xk, yk = x[keep], y[keep]
        if keep.any():
            rt_x = float((t.inv(yk) - xk).abs().max())
            rt_y = float(((t(t.inv(yk)) - yk).abs() / yk.abs().clamp(min=1.0)).max())
        else:
            rt_x = rt_y = float("nan")
    return {
        "roundtrip_x": rt_x,
        "roundtrip_y_rel": rt_y,
        "logdet_err": _autograd_logdet_error(t, x, y),
        "boundary_fraction": float(1.0 - keep.double().mean()),
    }


def bijection_table(
    transforms: Mapping[str, Transform],
    x: torch.Tensor,
    dtypes: Sequence[torch.dtype] = _DTYPES,
) -> list[dict[str, Any]]:
    """:func:`bijection_errors` of every transform at ``x`` cast to each dtype.

    Arguments:
        transforms: name -> transform.
        x: the points (cast to each dtype in turn).
        dtypes: the dtypes, outer loop (default float32, float64).

    Returns:
        One row per dtype and transform: ``bijection`` (the name), ``dtype``
        (``"float32"``...) and the errors of :func:`bijection_errors`.

    Example:
        >>> from elulab.flows import LinearTailELUTransform
        >>> rows = bijection_table({"tail": LinearTailELUTransform()}, torch.randn(50))
        >>> [(r["bijection"], r["dtype"]) for r in rows]
        [('tail', 'float32'), ('tail', 'float64')]
    """
    rows: list[dict[str, Any]] = []
    for dtype in dtypes:
        xd = x.to(dtype)
        for name, t in transforms.items():
            row: dict[str, Any] = {"bijection": name, "dtype": str(dtype).replace("torch.", "")}
            rows.append({**row, **bijection_errors(t, xd)})
    return rows


def flow_logdet_errors(transforms: Sequence[Transform], z: torch.Tensor) -> dict[str, float]:
    r"""Log-det errors of a composed flow, per layer and whole, against autograd Jacobians.

    The transforms are applied in order to each point ``z[i]`` (one event). Returns
    ``layer_err``: the largest error of any single layer's log-det against the
    ``slogdet`` of that layer's Jacobian (``torch.autograd.functional.jacobian``);
    ``flow_err``: the error of the whole composition's log-det against the ``slogdet``
    of the whole Jacobian; ``flow_err_over_eps_cond``: ``flow_err / (eps cond(J))``.
    The Jacobian of a deep flow with random weights can have a condition number of 1e9,
    and ``slogdet`` itself is then only good to about :math:`\epsilon\,\mathrm{cond}(J)`:
    a ratio <= 1 means agreement to the accuracy of the reference.

    Arguments:
        transforms: the layers, applied first to last (event dimension 0 or 1).
        z: ``(points, D)``, each row an input event of the first layer.

    Example:
        >>> from torch.distributions import AffineTransform
        >>> from elulab.flows import LinearTailELUTransform
        >>> ts = [AffineTransform(0.5, 2.0), LinearTailELUTransform()]
        >>> e = flow_logdet_errors(ts, torch.randn(2, 3, dtype=torch.float64))
        >>> e["layer_err"] < 1e-14, e["flow_err_over_eps_cond"] < 1.0
        (True, True)
    """
    transforms = list(transforms)
    whole = ComposeTransform(transforms)
    eps = torch.finfo(z.dtype).eps
    layer_err = flow_err = ratio = 0.0
    for i in range(z.shape[0]):
        v = z[i]
        for t in transforms:
            y = t(v).detach()
            J = torch.autograd.functional.jacobian(lambda u, t=t: t(u), v).detach()
            ld = t.log_abs_det_jacobian(v, y).detach()
            ld = ld.sum() if t.domain.event_dim == 0 else ld
            layer_err = max(layer_err, abs(float(ld) - float(torch.linalg.slogdet(J)[1])))
            v = y
        J = torch.autograd.functional.jacobian(lambda u: whole(u), z[i]).detach()
        ld = whole.log_abs_det_jacobian(z[i], v).detach().sum()  # elementwise-only: per coordinate
        err = abs(float(ld) - float(torch.linalg.slogdet(J)[1]))
        flow_err = max(flow_err, err)
        ratio = max(ratio, err / (eps * float(torch.linalg.cond(J))))
    return {"layer_err": layer_err, "flow_err": flow_err, "flow_err_over_eps_cond": ratio}


def random_flow_logdet_errors(
    alpha: float = 1.0,
    *,
    dim: int = 8,
    blocks: int = 4,
    hidden: int = 16,
    points: int = 4,
    elementwise: str = "elu_tail",
) -> dict[str, float]:
    r""":func:`flow_logdet_errors` of an untrained float64 :func:`make_flow` with random weights.

    Every parameter is drawn from :math:`\mathcal N(0, 0.3^2)` so that no layer is the
    identity, then ``points`` standard normal inputs; all from torch's global generator
    (seed it, or run under :func:`elulab.train.seeded`, for a reproducible check).

    Arguments:
        alpha: ELU's :math:`\alpha`.
        dim, blocks, hidden, elementwise: as in :func:`make_flow`.
        points: the number of input points.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> e = random_flow_logdet_errors(dim=4, blocks=2, points=2)
        >>> e["layer_err"] < 1e-12, e["flow_err_over_eps_cond"] <= 1.0
        (True, True)
    """
    flow = make_flow(dim, elementwise=elementwise, blocks=blocks, hidden=hidden, alpha=alpha)
    flow = flow.double()
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_(0.0, 0.3)
    z = torch.randn(points, dim, dtype=torch.float64)
    return flow_logdet_errors(flow.transforms(), z)
