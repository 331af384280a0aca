"""Training: one seeded batch iterator, one loop with hooks, classifier helpers.

The layer between the modules (:mod:`elulab.nn`) and the observers
(:mod:`elulab.diagnostics`): every experiment and ``elulab audit`` train through
:func:`fit`.

* :func:`batches`, :func:`fit`, :class:`FitResult`, :class:`StepState`: the loop;
* :func:`stream_seed`, :func:`generator`, :func:`seeded`: named random streams;
* :func:`build_mlp`, :func:`train_classifier`, :func:`accuracy`,
  :func:`predict_proba`: MLP classifiers on tensors;
* :func:`double_backprop_step`, :func:`input_gradient_probe`: the input-gradient
  penalty as a step for :func:`fit`, and accuracy / input-gradient norm / FGSM;
* :func:`flow_nll`, :func:`flow_row_nll`, :func:`gaussian_nll`, :func:`fit_flow`,
  :func:`tune_lr`, :class:`FlowFit`: density estimation with :mod:`elulab.flows`
  models, the learning rate chosen on validation;
* :func:`grid_points`, :func:`select`, :func:`select_and_refit`, :func:`steps_per_epoch`:
  grid search with early stopping on validation, the winner retrained.
* :func:`fit_regressors`, :func:`relative_errors`: one regression MLP trained for every
  (activation, learning rate) pair from the same initial weights, in one loop.
"""

from ._fit import FitResult as FitResult
from ._fit import StepState as StepState
from ._fit import batches as batches
from ._fit import fit as fit
from ._flows import FlowFit as FlowFit
from ._flows import fit_flow as fit_flow
from ._flows import flow_nll as flow_nll
from ._flows import flow_row_nll as flow_row_nll
from ._flows import gaussian_nll as gaussian_nll
from ._flows import tune_lr as tune_lr
from ._input_grad import double_backprop_step as double_backprop_step
from ._input_grad import input_gradient_probe as input_gradient_probe
from ._mlp import INITS as INITS
from ._mlp import NORMS as NORMS
from ._mlp import TrainResult as TrainResult
from ._mlp import accuracy as accuracy
from ._mlp import batch_cross_entropy as batch_cross_entropy
from ._mlp import build_mlp as build_mlp
from ._mlp import predict_proba as predict_proba
from ._mlp import train_classifier as train_classifier
from ._nodes import NodeResult as NodeResult
from ._nodes import fit_nodes as fit_nodes
from ._nodes import node_score as node_score
from ._rng import generator as generator
from ._rng import seeded as seeded
from ._rng import stream_seed as stream_seed
from ._select import Refit as Refit
from ._select import Selection as Selection
from ._select import grid_points as grid_points
from ._select import select as select
from ._select import select_and_refit as select_and_refit
from ._select import steps_per_epoch as steps_per_epoch
from ._stacked import fit_regressors as fit_regressors
from ._stacked import relative_errors as relative_errors

__all__ = [
    "INITS",
    "NORMS",
    "FitResult",
    "FlowFit",
    "NodeResult",
    "Refit",
    "Selection",
    "StepState",
    "TrainResult",
    "accuracy",
    "batch_cross_entropy",
    "batches",
    "build_mlp",
    "double_backprop_step",
    "fit",
    "fit_flow",
    "fit_nodes",
    "fit_regressors",
    "flow_nll",
    "flow_row_nll",
    "gaussian_nll",
    "generator",
    "grid_points",
    "input_gradient_probe",
    "node_score",
    "predict_proba",
    "relative_errors",
    "seeded",
    "select",
    "select_and_refit",
    "steps_per_epoch",
    "stream_seed",
    "train_classifier",
    "tune_lr",
]
