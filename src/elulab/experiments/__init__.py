"""One module per claim. Each defines an :class:`elulab.lab.api.Experiment` subclass.

``EXPERIMENTS`` is the one registry: name -> experiment class, in report order.
To add an experiment, write its module and add it to ``_MODULES``.
"""

from __future__ import annotations

import importlib

from ..lab.api import ConfigError, Experiment

__all__ = ["EXPERIMENTS", "get_experiment"]

# module names under elulab.experiments, in the order the report lists them
_MODULES: tuple[str, ...] = (
    "dead_neurons",  # C1
    "rnn_gradient",  # C2
    "double_backprop",  # C3
    "resnet_preact",  # C4
    "snn_fixed_point",  # C5
    "snn_uci",  # C5
    "ffn_smoothness",  # C6
    "elu_flows",  # C7
    "gnn_heterophily",  # C8
    "pinn_activations",  # C9
    "dp_activations",  # C10
    "elu_kernels",  # C11
    "elu_expressivity",  # C11
    "adaptive_alpha",  # C11
)


def _load() -> dict[str, type[Experiment]]:
    found: dict[str, type[Experiment]] = {}
    for mod_name in _MODULES:
        mod = importlib.import_module(f"{__name__}.{mod_name}")
        for obj in vars(mod).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, Experiment)
                and obj is not Experiment
                and obj.__module__ == mod.__name__
            ):
                if obj.name in found:
                    raise RuntimeError(f"two experiments named {obj.name!r}")
                found[obj.name] = obj
    return found


EXPERIMENTS: dict[str, type[Experiment]] = _load()


def get_experiment(name: str) -> Experiment:
    """Return an instance of the experiment registered as ``name``.

    Raises:
        ConfigError: for an unknown name, listing the registered ones.
    """
    if name not in EXPERIMENTS:
        raise ConfigError(
            f"unknown experiment {name!r}; allowed: {', '.join(EXPERIMENTS) or '(none)'}"
        )
    return EXPERIMENTS[name]()
