"""Training: one seeded batch iterator, one loop with hooks, classifier helpers.

The layer between the modules (:mod:`elulab.nn`) and the observers
(:mod:`elulab.diagnostics`): every experiment and ``elulab audit`` train through
:func:`fit`.

* :func:`batches`, :func:`fit`, :class:`FitResult`, :class:`StepState`: the loop;
* :func:`stream_seed`, :func:`generator`, :func:`seeded`: named random streams;
* :func:`build_mlp`, :func:`train_classifier`, :func:`accuracy`,
  :func:`predict_proba`: MLP classifiers on tensors.
"""

from ._fit import FitResult as FitResult
from ._fit import StepState as StepState
from ._fit import batches as batches
from ._fit import fit as fit
from ._mlp import INITS as INITS
from ._mlp import NORMS as NORMS
from ._mlp import TrainResult as TrainResult
from ._mlp import accuracy as accuracy
from ._mlp import build_mlp as build_mlp
from ._mlp import predict_proba as predict_proba
from ._mlp import train_classifier as train_classifier
from ._rng import generator as generator
from ._rng import seeded as seeded
from ._rng import stream_seed as stream_seed

__all__ = [
    "INITS",
    "NORMS",
    "FitResult",
    "StepState",
    "TrainResult",
    "accuracy",
    "batches",
    "build_mlp",
    "fit",
    "generator",
    "predict_proba",
    "seeded",
    "stream_seed",
    "train_classifier",
]
