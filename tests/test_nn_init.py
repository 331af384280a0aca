"""Tests of elulab.nn.orthogonal: orthogonality, Haar statistics, determinism, errors."""

from __future__ import annotations

import pytest
import torch

from elulab.nn import orthogonal


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_orthogonal_is_orthogonal(n: int) -> None:
    q = orthogonal(n, torch.Generator().manual_seed(3))
    assert q.shape == (n, n) and q.dtype == torch.float64
    eye = torch.eye(n, dtype=torch.float64)
    torch.testing.assert_close(q.T @ q, eye, rtol=0, atol=1e-13)
    torch.testing.assert_close(q @ q.T, eye, rtol=0, atol=1e-13)
    s = torch.linalg.svdvals(2.5 * q)  # every singular value of g Q is g
    torch.testing.assert_close(s, torch.full((n,), 2.5, dtype=torch.float64), rtol=1e-13, atol=0)


def test_orthogonal_is_haar_distributed() -> None:
    # For Haar Q (n = 3): E[Q_ij] = 0 and E[Q_ij^2] = 1/n for every entry, and det = +-1
    # with equal probability. Without the sign fix of R's diagonal, QR of a Gaussian gives
    # a biased distribution (LAPACK's Householder QR makes Q's diagonal mostly negative).
    # 4000 draws: the standard error of a mean of Q_ij is sqrt(1/3/4000) = 0.009; 0.04 is
    # more than 4 standard errors.
    gen = torch.Generator().manual_seed(11)
    qs = torch.stack([orthogonal(3, gen) for _ in range(4000)])
    assert float(qs.mean(0).abs().max()) < 0.04
    assert float((qs.pow(2).mean(0) - 1 / 3).abs().max()) < 0.02
    det = torch.linalg.det(qs)
    torch.testing.assert_close(det.abs(), torch.ones(4000, dtype=torch.float64))
    assert abs(float((det > 0).double().mean()) - 0.5) < 0.04


def test_orthogonal_determinism_and_dtype() -> None:
    # QR of n * n float64 normals drawn from the generator, columns signed by diag(R) > 0
    a = orthogonal(5, torch.Generator().manual_seed(0))
    b = orthogonal(5, torch.Generator().manual_seed(0), torch.float32)
    assert torch.equal(a.float(), b) and b.dtype == torch.float32
    ref = torch.Generator().manual_seed(0)
    q, r = torch.linalg.qr(torch.randn(5, 5, generator=ref, dtype=torch.float64))
    assert torch.equal(a, q * torch.sign(torch.diagonal(r)).unsqueeze(0))
    gen = torch.Generator().manual_seed(0)
    orthogonal(5, gen)
    assert torch.equal(gen.get_state(), ref.get_state())  # nothing else is drawn


@pytest.mark.parametrize(
    "args, err, match",
    [
        ((0,), ValueError, "n must be an int >= 1"),
        ((2.0,), ValueError, "n must be an int >= 1"),
        ((True,), ValueError, "n must be an int >= 1"),
        ((3, torch.int64), TypeError, "floating dtype"),
    ],
)
def test_orthogonal_errors(args: tuple, err: type, match: str) -> None:
    n, *rest = args
    with pytest.raises(err, match=match):
        orthogonal(n, torch.Generator(), *rest)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        orthogonal(3, 0)  # type: ignore[arg-type]
