"""The lab: runs experiments over seeds, stores every result, decides verdicts.

* :mod:`elulab.lab.api`: the experiment interface (Experiment, RunResult, Verdict, ...);
* :mod:`elulab.lab.runner`: :func:`run_experiment`, one sweep from config to summary;
* :mod:`elulab.lab.backends`: where runs execute (in-process, worker processes, Ray);
* :mod:`elulab.lab.store`: the SQLite result store and its artifacts folder;
* :mod:`elulab.lab.stats`: confidence intervals and the decision rule of verdicts;
* :mod:`elulab.lab.costs`: the run time of each experiment's profile, from the store.

The lab never imports :mod:`elulab.experiments`: it is handed Experiment instances.
See ``docs/lab.md``.
"""

from .backends import LocalBackend as LocalBackend
from .backends import RayBackend as RayBackend
from .backends import make_backend as make_backend
from .backends import seed_everything as seed_everything
from .costs import ExperimentCost as ExperimentCost
from .costs import store_costs as store_costs
from .runner import SweepOutcome as SweepOutcome
from .runner import load_experiment as load_experiment
from .runner import run_experiment as run_experiment
from .store import RunRecord as RunRecord
from .store import Store as Store
from .store import StoreError as StoreError
from .store import SummaryRecord as SummaryRecord

__all__ = [
    "ExperimentCost",
    "LocalBackend",
    "RayBackend",
    "RunRecord",
    "Store",
    "StoreError",
    "SummaryRecord",
    "SweepOutcome",
    "load_experiment",
    "make_backend",
    "run_experiment",
    "seed_everything",
    "store_costs",
]
