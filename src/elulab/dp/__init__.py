"""Differential privacy through Opacus: DP-SGD on the kit's loop, per-sample gradient norms.

The layer between training (:mod:`elulab.train`) and the observers
(:mod:`elulab.diagnostics`). Opacus (the optional extra ``dp``) is imported only when a
function runs, so ``import elulab.dp`` works without it. Nothing is hand-written: the
clipping, noise, Poisson sampling and privacy accounting are Opacus's.

* :func:`train_private`, :class:`PrivateFit`: DP-SGD to an ``(epsilon, delta)`` budget
  on :func:`elulab.train.fit`, with the epsilon spent by the RDP and PRV accountants;
* :func:`noise_multiplier`, :func:`spent_epsilon`: Opacus's calibration and accountants;
* :func:`per_sample_grad_norms`, :class:`GradNorms`, :func:`suggest_clip`: per-sample
  gradient norms per layer and in total; a clipping norm from a public sample;
* :func:`check_budget`, :func:`check_model`: one-line errors for a bad budget or a
  module Opacus rejects;
* :data:`EXPECTED_WARNINGS`, :func:`expected_warnings`: the warnings a correct DP run
  raises, and why.
"""

from ._norms import GradNorms as GradNorms
from ._norms import per_sample_grad_norms as per_sample_grad_norms
from ._norms import suggest_clip as suggest_clip
from ._private import ACCOUNTANTS as ACCOUNTANTS
from ._private import EXPECTED_WARNINGS as EXPECTED_WARNINGS
from ._private import GRAD_SAMPLE_MODES as GRAD_SAMPLE_MODES
from ._private import PrivateFit as PrivateFit
from ._private import check_budget as check_budget
from ._private import check_model as check_model
from ._private import expected_warnings as expected_warnings
from ._private import noise_multiplier as noise_multiplier
from ._private import spent_epsilon as spent_epsilon
from ._private import train_private as train_private

__all__ = [
    "ACCOUNTANTS",
    "EXPECTED_WARNINGS",
    "GRAD_SAMPLE_MODES",
    "GradNorms",
    "PrivateFit",
    "check_budget",
    "check_model",
    "expected_warnings",
    "noise_multiplier",
    "per_sample_grad_norms",
    "spent_epsilon",
    "suggest_clip",
    "train_private",
]
