"""Seeding: one helper for every random draw a run makes.

A run gets one integer ``seed``. Each consumer of randomness (initial weights,
minibatch order, dropout masks, a probe's noise) draws from its own *stream*:

* :func:`stream_seed` ``(seed, "batches")`` derives a 63-bit sub-seed from the run's
  seed and the stream's name (SHA-256), so that adding a stream never shifts another;
  with no name it is ``seed`` itself;
* :func:`generator` returns a ``torch.Generator`` on that stream;
* :func:`seeded` is a context manager that runs its body on that stream of torch's
  *global* generator (for modules that draw from it: ``nn.Linear``'s default init,
  ``nn.Dropout``) inside :func:`torch.random.fork_rng`, so the caller's global state
  is restored afterwards: no global reseeding leaks out of a block.

Example:
    >>> import torch
    >>> with seeded(0, "init"):
    ...     a = torch.randn(2)
    >>> with seeded(0, "init"):
    ...     b = torch.randn(2)
    >>> bool((a == b).all()), stream_seed(3) == 3, stream_seed(3, "x") == stream_seed(3, "y")
    (True, True, False)
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch

__all__ = ["generator", "seeded", "stream_seed"]


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return seed


def stream_seed(seed: int, *stream: str | int) -> int:
    """The seed of the named stream ``stream`` of run ``seed``.

    .. math:: s(\\text{seed}, \\text{name}) = \\lfloor \\mathrm{SHA256}(\\text{seed/name}) / 2^{193} \\rfloor

    (the first 63 bits of the digest). Without a name it is ``seed`` itself, so that
    a stream can be pinned to the run's seed.

    Args:
        seed: the run's seed (>= 0).
        stream: the stream's name, as one or more parts (e.g. ``"batches"``, or
            ``"init", arch``).

    Example:
        >>> stream_seed(0), stream_seed(0, "batches") != stream_seed(1, "batches")
        (0, True)
    """
    _check_seed(seed)
    if not stream:
        return seed
    blob = "/".join([str(seed), *map(str, stream)]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") >> 1


def generator(seed: int, *stream: str | int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with :func:`stream_seed` ``(seed, *stream)``.

    Example:
        >>> g = generator(0, "batches")
        >>> torch.randperm(4, generator=g).tolist() == torch.randperm(4, generator=generator(0, "batches")).tolist()
        True
    """
    return torch.Generator(device=device).manual_seed(stream_seed(seed, *stream))


@contextlib.contextmanager
def seeded(seed: int, *stream: str | int) -> Iterator[None]:
    """Run the body with torch's global generator on stream ``(seed, *stream)``.

    The global state (CPU, and CUDA where initialised) is saved before and restored
    after, by :func:`torch.random.fork_rng`.

    Example:
        >>> _ = torch.manual_seed(5); before = torch.random.get_rng_state()
        >>> with seeded(1, "dropout"):
        ...     _ = torch.rand(3)
        >>> bool((torch.random.get_rng_state() == before).all())
        True
    """
    s = stream_seed(seed, *stream)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(s)
        yield
