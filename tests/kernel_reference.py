"""30-digit mpmath references for the ELU-family kernels (tests/test_theory_kernels.py).

For ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])`` and ``f(x) = lam * c * elu(x / c; alpha)``
(ELU: ``lam = c = 1``; CELU: ``c = alpha_celu``, ``alpha = 1``; SELU: ``lam = lambda_01``,
``alpha = alpha_01``), the inner variable is integrated analytically: given ``v``,
``u ~ N(beta v, tau^2)`` with ``beta = s12 / s22``, ``tau^2 = s11 - s12^2 / s22``, and

    E[elu(w) | v]  = mu Phi(m) + t phi(m) + alpha (e^{mu + t^2/2} Phi(-m - t) - Phi(-m)),
    E[elu'(w) | v] = Phi(m) + alpha e^{mu + t^2/2} Phi(-m - t),

for ``w = u / c ~ N(mu, t^2)``, ``m = mu / t``. The outer integral over ``z = v / sqrt(s22)``
is Gauss-Legendre (mpmath nodes) on panels that double in width away from the kink at
``z = 0``, starting 1000 times below the smallest scale of the integrand (the width
``r / |rho|`` of the conditional transition, ``1 / sqrt(s22)`` of ``e^v``, 1), out to
``|z| = 13`` (``phi(13) < 1e-37``), at 40 digits. It agrees with its mirror (the roles of
``u`` and ``v`` swapped) to 1e-32 and with tanh-sinh quadrature
(test_theory_kernels.py::test_reference_agrees_with_other_quadratures; during development,
with nested tanh-sinh at 40 digits to 1e-35 on 7 covariances from 1e-3 to 1e2).
At ``rho = +-1`` the expectation is univariate and is integrated the same way.

Regenerate the cached values with ``python tests/kernel_reference.py`` (a few minutes).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import mpmath as mp
from mpmath.calculus.quadrature import GaussLegendre

DPS = 40
PATH = Path(__file__).with_name("data") / "kernel_references.json"
SELU_LAMBDA = "1.0507009873554804934193349852946"
SELU_ALPHA = "1.6732632423543772848170429916717"

_NODES: dict[int, list] = {}


def _nodes() -> list:
    prec = mp.mp.prec
    if prec not in _NODES:
        _NODES[prec] = GaussLegendre(mp.mp).calc_nodes(5, prec)  # 3 * 2^5 nodes per panel
    return _NODES[prec]


def _panels(scales: list) -> list:
    lo = min(scales) * mp.mpf("1e-3")
    edges = [mp.mpf(0)]
    x = lo
    while x < 13:
        edges.append(x)
        x *= 2
    edges.append(mp.mpf(13))
    return edges


def _elu(x, alpha):
    return x if x > 0 else alpha * mp.expm1(x)


def _delu(x, alpha):
    return mp.mpf(1) if x > 0 else alpha * mp.exp(x)


def kernels(s11, s12, s22, alpha, lam=1, c=1) -> tuple:
    """``(E[f(u) f(v)], E[f'(u) f'(v)])`` as mpmath numbers (40-digit working precision)."""
    with mp.workdps(DPS):
        s11, s12, s22, alpha, lam, c = (mp.mpf(x) for x in (s11, s12, s22, alpha, lam, c))
        s2 = mp.sqrt(s22)
        beta = s12 / s22
        tau2 = s11 - s12 * s12 / s22
        scales = [mp.mpf(1), 1 / s2, c / s2]
        degenerate = tau2 <= 0
        if not degenerate:
            tau = mp.sqrt(tau2)
            if s12 != 0:
                scales += [tau / abs(beta * s2), c / abs(beta * s2)]
        acc_k = mp.mpf(0)
        acc_n = mp.mpf(0)
        edges = _panels(scales)
        for sign in (1, -1):
            for a, b in itertools.pairwise(edges):
                h, m = (b - a) / 2, (a + b) / 2
                for t, w in _nodes():
                    z = sign * (m + h * t)
                    v = s2 * z
                    fv = lam * c * _elu(v / c, alpha)
                    dv = lam * _delu(v / c, alpha)
                    if degenerate:  # u = beta v exactly
                        fu = lam * c * _elu(beta * v / c, alpha)
                        du = lam * _delu(beta * v / c, alpha)
                    else:
                        mu, tt = beta * v / c, tau / c
                        q = mu / tt
                        e = mp.exp(mu + tt * tt / 2) * mp.ncdf(-q - tt)
                        fu = (
                            lam
                            * c
                            * (mu * mp.ncdf(q) + tt * mp.npdf(q) + alpha * (e - mp.ncdf(-q)))
                        )
                        du = lam * (mp.ncdf(q) + alpha * e)
                    wt = w * h * mp.npdf(z)
                    acc_k += wt * fv * fu
                    acc_n += wt * dv * du
        return acc_k, acc_n


def _grid() -> list[dict]:
    rows = []
    variances = [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0]
    rhos = [-0.999, -0.9, -0.5, 0.0, 0.3, 0.9, 0.999]
    for i, s11 in enumerate(variances):
        for s22 in variances[i:]:
            for rho in rhos:
                for alpha in (0.1, 1.0, 3.0):
                    rows.append({"kind": "elu", "s11": s11, "s22": s22, "rho": rho, "alpha": alpha})
    # exact +-1 correlations (variances whose square roots and their product are exact)
    for s11, s22 in (
        (2.0**-10, 2.0**-10),
        (2.0**-10, 1.0),
        (0.25, 4.0),
        (16.0, 100.0),
        (100.0, 100.0),
    ):
        for rho in (-1.0, 1.0):
            for alpha in (0.1, 1.0, 3.0):
                rows.append({"kind": "elu", "s11": s11, "s22": s22, "rho": rho, "alpha": alpha})
    # random points: log-uniform variances and alpha, uniform correlation
    state = 12345
    for _ in range(80):
        vals = []
        for _ in range(4):
            state = (1103515245 * state + 12345) % 2**31  # a fixed LCG: no numpy needed here
            vals.append(state / 2**31)
        s11 = 10 ** (-3 + 5 * vals[0])
        s22 = 10 ** (-3 + 5 * vals[1])
        rho = round(-0.999 + 1.998 * vals[2], 6)
        alpha = 10 ** (-1 + math.log10(30) * vals[3])
        rows.append({"kind": "elu", "s11": s11, "s22": s22, "rho": rho, "alpha": alpha})
    # CELU (alpha scales the input) and SELU, directly (not through the ELU identities)
    for s11, s22, rho in (
        (0.02, 0.5, 0.4),
        (1.0, 1.0, -0.7),
        (5.0, 50.0, 0.95),
        (0.3, 3.0, -0.999),
    ):
        for alpha in (0.25, 2.5):
            rows.append({"kind": "celu", "s11": s11, "s22": s22, "rho": rho, "alpha": alpha})
        rows.append({"kind": "selu", "s11": s11, "s22": s22, "rho": rho, "alpha": None})
    return rows


def compute(row: dict) -> dict:
    s11, s22, rho = row["s11"], row["s22"], row["rho"]
    s12 = rho * math.sqrt(s11 * s22)
    if abs(rho) == 1.0:
        s12 = rho * math.sqrt(s11) * math.sqrt(s22)
    if row["kind"] == "elu":
        k, n = kernels(s11, s12, s22, row["alpha"])
    elif row["kind"] == "celu":
        k, n = kernels(s11, s12, s22, 1, c=row["alpha"])
    else:
        k, n = kernels(s11, s12, s22, SELU_ALPHA, lam=SELU_LAMBDA)
    return {**row, "s12": s12, "nngp": mp.nstr(k, 32), "ntk": mp.nstr(n, 32)}


def main() -> None:
    rows = _grid()
    out = []
    for i, row in enumerate(rows):
        out.append(compute(row))
        if i % 50 == 0:
            print(f"{i}/{len(rows)}", file=sys.stderr, flush=True)
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(json.dumps({"dps": DPS, "digits": 32, "rows": out}, indent=0) + "\n")


if __name__ == "__main__":
    main()
