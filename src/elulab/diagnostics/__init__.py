"""Hooks that watch a model train: dead and saturated units, gradient flow, per layer.

* :class:`Diagnostics`: a context manager that attaches hooks to any ``nn.Module``
  (Linear, Conv and activation modules), keeps their handles and always removes them;
  :meth:`Diagnostics.step` gives one :class:`LayerStats` per layer and step.
* :func:`audit`: train a model a few steps with the hooks on and audit every layer
  over a whole pass (what ``elulab audit`` runs); :class:`AuditResult`,
  :func:`render_html`, :func:`load_factory`, :func:`build_model`.
* :func:`gain_probe`, :func:`probe_gradient`, :func:`fit_log_gain`: the per-step gain
  of a gradient backpropagated through a vanilla RNN, measured and predicted.

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
from ._rnn import GAIN_PREDICTIONS as GAIN_PREDICTIONS
from ._rnn import GainProbe as GainProbe
from ._rnn import fit_log_gain as fit_log_gain
from ._rnn import gain_probe as gain_probe
from ._rnn import probe_gradient as probe_gradient

__all__ = [
    "DEFAULT_EPS",
    "GAIN_PREDICTIONS",
    "AuditResult",
    "Diagnostics",
    "FactoryError",
    "GainProbe",
    "LayerStats",
    "ModelDataMismatch",
    "audit",
    "audit_dataset",
    "build_model",
    "check_model_fits",
    "fit_log_gain",
    "gain_probe",
    "html_section",
    "load_factory",
    "probe_gradient",
    "render_html",
]
