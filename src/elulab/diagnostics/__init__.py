"""Hooks that watch a model train: dead and saturated units, gradient flow, per layer.

* :class:`Diagnostics`: a context manager that attaches hooks to any ``nn.Module``
  (Linear, Conv and activation modules), keeps their handles and always removes them;
  :meth:`Diagnostics.step` gives one :class:`LayerStats` per layer and step.
* :func:`audit`: train a model a few steps with the hooks on and audit every layer
  over a whole pass (what ``elulab audit`` runs); :class:`AuditResult`,
  :func:`render_html`, :func:`load_factory`, :func:`build_model`.
* :func:`dead_fractions` (dead and saturated units over a whole data set),
  :func:`zero_slope_point` and :func:`zero_slope_stats` (where a slope is exactly 0 in
  floating point, e.g. ELU's ``e^x`` underflowing below ``x = -103.97`` in float32).
* :func:`gain_probe`, :func:`probe_gradient`, :func:`fit_log_gain`: the per-step gain
  of a gradient backpropagated through a vanilla RNN, measured and predicted.
* :func:`layer_gradient_variance`, :func:`gradient_cv`: the per-layer variance of a
  gradient and its coefficient of variation across layers.
* :func:`layer_statistics`: each layer's activation mean and variance in a deep random
  MLP (signal propagation; predicted by :func:`elulab.theory.random_net_statistics`).

The definitions (dead, saturated, units, gain) are in :mod:`elulab.diagnostics._hooks`
and ``docs/audit.md``.
"""

from ._audit import AuditResult as AuditResult
from ._audit import FactoryError as FactoryError
from ._audit import ModelDataMismatch as ModelDataMismatch
from ._audit import audit as audit
from ._audit import audit_dataset as audit_dataset
from ._audit import build_model as build_model
from ._audit import check_model_fits as check_model_fits
from ._audit import html_section as html_section
from ._audit import load_factory as load_factory
from ._audit import render_html as render_html
from ._hooks import DEFAULT_EPS as DEFAULT_EPS
from ._hooks import Diagnostics as Diagnostics
from ._hooks import LayerStats as LayerStats
from ._layer_grads import gradient_cv as gradient_cv
from ._layer_grads import layer_gradient_variance as layer_gradient_variance
from ._propagation import layer_statistics as layer_statistics
from ._rnn import GAIN_PREDICTIONS as GAIN_PREDICTIONS
from ._rnn import GainProbe as GainProbe
from ._rnn import fit_log_gain as fit_log_gain
from ._rnn import gain_probe as gain_probe
from ._rnn import probe_gradient as probe_gradient
from ._whole_pass import ZeroSlope as ZeroSlope
from ._whole_pass import dead_fractions as dead_fractions
from ._whole_pass import zero_slope_point as zero_slope_point
from ._whole_pass import zero_slope_stats as zero_slope_stats

__all__ = [
    "DEFAULT_EPS",
    "GAIN_PREDICTIONS",
    "AuditResult",
    "Diagnostics",
    "FactoryError",
    "GainProbe",
    "LayerStats",
    "ModelDataMismatch",
    "ZeroSlope",
    "audit",
    "audit_dataset",
    "build_model",
    "check_model_fits",
    "dead_fractions",
    "fit_log_gain",
    "gain_probe",
    "gradient_cv",
    "html_section",
    "layer_gradient_variance",
    "layer_statistics",
    "load_factory",
    "probe_gradient",
    "render_html",
    "zero_slope_point",
    "zero_slope_stats",
]
