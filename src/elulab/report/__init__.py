"""The static HTML report: the claim ledger rendered from the result store.

``build_report(store_path, out_dir)`` writes a site that opens from disk
(``file://``) without a server: ``index.html`` has one row per claim and
experiment (verdict badge, effect with its 95% confidence interval, seeds,
experiment and profile), and each claim has a page with its text from
``CLAIMS.md``, figures, tables, per-seed metrics, the resolved config, seeds,
environment and failed runs. The report reads the store only; it never imports
an experiment. Figures come from two places: the PNG files experiments drew
(copied from the store's artifacts) and curves drawn here from each run's
:class:`~elulab.lab.api.Series` (mean over seeds with a band of one standard
deviation).

Beside each verdict the report shows the decisive one: the full-profile reference
verdicts shipped with elulab (``reference.json``, written by ``elulab reference``
from a store; see :mod:`elulab.report._reference`), and quick-profile pages carry a
banner saying that their verdicts are not the decisive ones. ``ledger_markdown``
prints the README's verdict table from the reference.

Example:
    >>> import tempfile, pathlib
    >>> from elulab.lab.store import Store
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = Store(d / "results.sqlite")
    >>> index = build_report(d / "results.sqlite", d / "report")
    >>> "Nothing has been run yet" in index.read_text()
    True
"""

from ._build import ReportError as ReportError
from ._build import build_report as build_report
from ._build import check_out_dir as check_out_dir
from ._claims import Claim as Claim
from ._claims import ClaimsError as ClaimsError
from ._claims import Ledger as Ledger
from ._claims import parse_claims as parse_claims
from ._reference import Reference as Reference
from ._reference import ReferenceError as ReferenceError
from ._reference import build_reference as build_reference
from ._reference import bundled_reference_path as bundled_reference_path
from ._reference import ledger_markdown as ledger_markdown
from ._reference import load_reference as load_reference
from ._reference import merge_references as merge_references
from ._reference import replace_between_markers as replace_between_markers
from ._reference import write_reference as write_reference

__all__ = [
    "Claim",
    "ClaimsError",
    "Ledger",
    "Reference",
    "ReferenceError",
    "ReportError",
    "build_reference",
    "build_report",
    "bundled_reference_path",
    "check_out_dir",
    "ledger_markdown",
    "load_reference",
    "merge_references",
    "parse_claims",
    "replace_between_markers",
    "write_reference",
]
