"""Replace the activation modules of a model in place.

:func:`swap_activations` walks a model, replaces every submodule that is an instance of
``old`` by a fresh ``new`` activation, and returns what it replaced. It is how a user
turns a ReLU network into an ELU network (or any other activation) without touching
its code, and how the experiments build one architecture per activation.

Activations called as functions inside ``forward`` (``F.relu(x)``, ``torch.relu(x)``)
are not submodules, so no module walk can see or replace them: write them as modules
(``self.act = nn.ReLU()``) first.

Example:
    >>> import torch.nn as nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> replaced = swap_activations(model, old=nn.ReLU, new=nn.ELU)
    >>> list(replaced), type(model[1]).__name__
    (['1'], 'ELU')
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["swap_activations"]

NewActivation = type[nn.Module] | nn.Module | str | Callable[[], nn.Module]


def _as_classes(old: type[nn.Module] | tuple[type[nn.Module], ...]) -> tuple[type[nn.Module], ...]:
    classes = old if isinstance(old, tuple) else (old,)
    if not classes or not all(isinstance(c, type) and issubclass(c, nn.Module) for c in classes):
        raise TypeError(
            f"old must be an nn.Module subclass or a tuple of them (e.g. nn.ReLU), got {old!r}"
        )
    return classes


def _factory(new: NewActivation) -> Callable[[], nn.Module]:
    """A zero-argument function that builds one new activation module per call."""
    if isinstance(new, str):
        from ._activations import get_activation  # the registry (elulab.nn)

        get_activation(new)  # fail now, with the registry's message, on an unknown name
        return lambda: get_activation(new)
    if isinstance(new, nn.Module):
        return lambda: copy.deepcopy(new)
    if isinstance(new, type):
        if not issubclass(new, nn.Module):
            raise TypeError(f"new must build an nn.Module, got the class {new.__name__}")
        return new
    if callable(new):
        return new
    raise TypeError(
        "new must be an activation name (str), an nn.Module subclass, an nn.Module "
        f"instance or a zero-argument callable returning one, got {type(new).__name__}"
    )


def swap_activations(
    model: nn.Module,
    old: type[nn.Module] | tuple[type[nn.Module], ...] = nn.ReLU,
    new: NewActivation = nn.ELU,
) -> dict[str, nn.Module]:
    """Replace, in place, every submodule of ``model`` that is an ``old`` by a ``new`` one.

    Each replaced module gets its own new module, except that a module registered under
    several names (shared) is replaced by one shared new module, so the model's sharing
    structure is kept. The new modules take the training mode of the ones they replace
    and, when they have parameters (e.g. ``nn.PReLU``), the device and dtype of the
    model's first parameter.

    Args:
        model: the model to modify (not itself an ``old``: the root cannot be replaced
            in place).
        old: the class (or tuple of classes) to replace; subclasses match too.
        new: what to put instead: an activation name understood by
            :func:`elulab.nn.get_activation` (e.g. ``"elu"``), an ``nn.Module`` subclass
            (called with no arguments), an ``nn.Module`` instance (deep-copied for each
            site) or a zero-argument callable returning a module.

    Returns:
        ``{qualified name: replaced module}`` in the order of ``model.named_modules()``;
        empty when nothing matched. A shared module appears under each of its names.

    Raises:
        TypeError: when ``model`` is not an ``nn.Module``, ``old`` is not a module class,
            or ``new`` does not build an ``nn.Module``.
        ValueError: when ``model`` itself is an ``old``.

    Example:
        >>> import torch.nn as nn
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.ReLU())
        >>> sorted(swap_activations(net, nn.ReLU, lambda: nn.LeakyReLU(0.1)))
        ['1', '3']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    classes = _as_classes(old)
    if isinstance(model, classes):
        raise ValueError(
            f"model itself is a {type(model).__name__}: swap_activations replaces submodules "
            "in place and cannot replace the root; build the new module directly"
        )
    build = _factory(new)

    sites: list[tuple[str, nn.Module, str, nn.Module]] = []
    seen: set[tuple[int, str]] = set()
    for parent_name, parent in model.named_modules(remove_duplicate=False):
        for child_name, child in parent._modules.items():
            if child is None or not isinstance(child, classes):
                continue
            if (id(parent), child_name) in seen:
                continue
            seen.add((id(parent), child_name))
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            sites.append((full, parent, child_name, child))

    first_param = next(iter(model.parameters()), None)
    made: dict[int, nn.Module] = {}
    replaced: dict[str, nn.Module] = {}
    for full, parent, child_name, child in sites:
        if id(child) not in made:
            module = build()
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"new built a {type(module).__name__} for {full!r}; it must build an nn.Module"
                )
            module.train(child.training)
            if first_param is not None and any(True for _ in module.parameters()):
                dtype = first_param.dtype if torch.is_floating_point(first_param) else None
                module.to(device=first_param.device, dtype=dtype)
            made[id(child)] = module
        setattr(parent, child_name, made[id(child)])
        replaced[full] = child
    return replaced
