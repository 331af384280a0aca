r"""Synthetic graphs whose homophily is a knob: the contextual SBM, and a sign task.

**Contextual stochastic block model** (Deshpande et al. 2018, "Contextual Stochastic
Block Models", NeurIPS; in the parameterisation of Chien et al. 2021, "Adaptive
Universal Generalized PageRank Graph Neural Network", ICLR, whose script sets
n = 800, F = 1000, d = 5, eps = 3.25). Two balanced classes :math:`v_i = \pm 1`; an
edge joins two nodes of the same class with probability :math:`c_{in}/n`, of different
classes with :math:`c_{out}/n`; features are

.. math::

    b_i = \sqrt{\mu / n}\, v_i\, u + Z_i / \sqrt{F}, \qquad u \sim N(0, I_F / F),
    \quad Z_i \sim N(0, I_F),

    c_{in} = d + \sqrt{d}\,\lambda, \quad c_{out} = d - \sqrt{d}\,\lambda, \quad
    \lambda^2 + \mu^2 / \xi = 1 + \epsilon, \quad \xi = n / F,

and one knob :math:`\phi \in [-1, 1]` moves the signal between graph and features:
:math:`\lambda = \sqrt{1+\epsilon}\,\sin(\phi\pi/2)`,
:math:`\mu = \sqrt{\xi(1+\epsilon)}\,\cos(\phi\pi/2)`. So :math:`\phi = 1` is a purely
homophilous graph, :math:`\phi = -1` a purely heterophilous one and :math:`\phi = 0`
leaves all the signal in the features. The expected edge homophily is

.. math:: h(\phi) = \frac{c_{in}}{c_{in} + c_{out}} = \frac12 + \frac{\lambda}{2\sqrt d}.

PyG has no CSBM (its ``StochasticBlockModelDataset`` caches files under names that
round probabilities to one decimal, and its features break with current
scikit-learn); this one draws the graph with
``torch_geometric.utils.stochastic_blockmodel_graph``.

**Sign task** (:func:`sign_task`): a controlled task in which a node's label is the
sign of its aggregated neighbour signal, :math:`y_i = 1[\sum_{j \in N(i)} s_j < 0]`
with :math:`s_j \sim N(0, 1)` carried in feature 0 (the other features are noise): the
label is decided by negative ("inhibitory") aggregates half of the time.
"""

from __future__ import annotations

import math

import torch

from .graphs import Graph, _gnn_extra, _undirected

__all__ = ["csbm", "csbm_homophily", "csbm_parameters", "sign_task"]


def csbm_parameters(phi: float, n: int, features: int, eps: float) -> tuple[float, float]:
    r"""``(lambda, mu)`` of the CSBM for the knob ``phi`` (see the module docstring).

    Example:
        >>> lam, mu = csbm_parameters(1.0, 800, 1000, 3.25)
        >>> round(lam, 6), round(mu, 6)
        (2.061553, 0.0)
    """
    if not -1.0 <= phi <= 1.0:
        raise ValueError(f"csbm: phi must be in [-1, 1], got {phi}")
    if n < 2 or features < 1:
        raise ValueError(f"csbm: need n >= 2 and features >= 1, got n={n}, features={features}")
    if eps <= -1.0:
        raise ValueError(f"csbm: eps must be > -1, got {eps}")
    xi = n / features
    lam = math.sqrt(1 + eps) * math.sin(phi * math.pi / 2)
    mu = math.sqrt(xi * (1 + eps)) * math.cos(phi * math.pi / 2)
    return lam, mu


def csbm_homophily(phi: float, degree: float = 5.0, eps: float = 3.25) -> float:
    r"""Expected edge homophily :math:`\frac12 + \lambda / (2\sqrt d)` of the CSBM.

    Example:
        >>> round(csbm_homophily(0.0), 12), round(csbm_homophily(-1.0), 4)
        (0.5, 0.039)
    """
    if degree <= 0:
        raise ValueError(f"csbm: degree must be > 0, got {degree}")
    lam, _ = csbm_parameters(phi, 2, 1, eps)
    return 0.5 + lam / (2 * math.sqrt(degree))


def csbm(
    phi: float,
    *,
    n: int = 800,
    features: int = 1000,
    degree: float = 5.0,
    eps: float = 3.25,
    splits: int = 10,
    train: float = 0.6,
    val: float = 0.2,
    seed: int = 0,
) -> Graph:
    """Draw one CSBM graph (module docstring) with ``splits`` random train/val/test masks.

    Args:
        phi: the knob in [-1, 1] (-1 heterophilous, 0 features only, 1 homophilous).
        n, features, degree, eps: nodes, feature dimension F, mean degree d and the
            signal-to-noise excess epsilon (defaults: Chien et al. 2021).
        splits, train, val: number of random splits and their train / val fractions
            (the rest is test), 60/20/20 as in GPRGNN's dense-split experiments.
        seed: the graph, features and splits are a function of ``seed`` only.

    Raises:
        ValueError: phi outside [-1, 1], c_out < 0 (degree too small for eps), bad sizes.

    Example:
        >>> g = csbm(-1.0, n=200, features=50, seed=0)
        >>> g.num_nodes, g.num_classes, g.x.shape
        (200, 2, torch.Size([200, 50]))
    """
    _gnn_extra()
    from torch_geometric.utils import stochastic_blockmodel_graph

    lam, mu = csbm_parameters(phi, n, features, eps)
    c_in, c_out = degree + math.sqrt(degree) * lam, degree - math.sqrt(degree) * lam
    if c_out < -1e-12 or c_in < -1e-12 or max(c_in, c_out) > n:
        raise ValueError(
            f"csbm: c_in={c_in:.3g}, c_out={c_out:.3g} must lie in [0, n]: "
            f"raise degree (> {(1 + eps):.3g}) or lower eps"
        )
    if not (0 < train < 1 and 0 <= val < 1 and train + val < 1):
        raise ValueError(f"csbm: need 0 < train, 0 <= val, train + val < 1; got {train}, {val}")
    c_in, c_out = max(c_in, 0.0), max(c_out, 0.0)
    half = n // 2
    g = torch.Generator().manual_seed(seed)
    v = torch.cat([torch.ones(half), -torch.ones(n - half)])
    u = torch.randn(features, generator=g) / math.sqrt(features)
    z = torch.randn(n, features, generator=g)
    x = math.sqrt(mu / n) * v[:, None] * u[None, :] + z / math.sqrt(features)
    probs = [[c_in / n, c_out / n], [c_out / n, c_in / n]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        edges = stochastic_blockmodel_graph([half, n - half], probs, directed=False)
    y = (v < 0).long()
    return Graph(
        name=f"csbm(phi={phi:g})",
        x=x.float(),
        y=y,
        edge_index=_undirected(edges, n),
        **_random_masks(n, splits, train, val, g),
        metric="accuracy",
    )


def _random_masks(
    n: int, splits: int, train: float, val: float, g: torch.Generator
) -> dict[str, torch.Tensor]:
    masks = {k: torch.zeros(splits, n, dtype=torch.bool) for k in ("train", "val", "test")}
    n_train, n_val = round(train * n), round(val * n)
    for s in range(splits):
        perm = torch.randperm(n, generator=g)
        masks["train"][s, perm[:n_train]] = True
        masks["val"][s, perm[n_train : n_train + n_val]] = True
        masks["test"][s, perm[n_train + n_val :]] = True
    return {f"{k}_masks": m for k, m in masks.items()}


def sign_task(
    *,
    n: int = 1000,
    features: int = 16,
    degree: float = 10.0,
    splits: int = 10,
    seed: int = 0,
) -> Graph:
    """A random graph whose labels are the sign of each node's aggregated neighbour signal.

    Each node carries a signal :math:`s_i \\sim N(0, 1)` in feature 0 and standard
    normal noise in the others; edges are Erdos-Renyi with mean degree ``degree``;
    :math:`y_i = 1[\\sum_{j \\in N(i)} s_j < 0]` (isolated nodes get the sign of their
    own signal). Splits are random 60/20/20.

    Example:
        >>> g = sign_task(n=100, seed=1)
        >>> g.num_classes
        2
    """
    _gnn_extra()
    from torch_geometric.utils import erdos_renyi_graph

    if n < 2 or features < 1 or not 0 < degree < n:
        raise ValueError(
            f"sign_task: need n >= 2, features >= 1, 0 < degree < n; got {n}, {features}, {degree}"
        )
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        edges = _undirected(erdos_renyi_graph(n, degree / (n - 1)), n)
    agg = torch.zeros(n).index_add_(0, edges[1], x[edges[0], 0])
    isolated = torch.bincount(edges[1], minlength=n) == 0
    agg = torch.where(isolated, x[:, 0], agg)
    return Graph(
        name="sign_task",
        x=x,
        y=(agg < 0).long(),
        edge_index=edges,
        **_random_masks(n, splits, 0.6, 0.2, g),
        metric="accuracy",
    )
