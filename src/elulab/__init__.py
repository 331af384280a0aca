"""elulab: the Exponential Linear Unit family, its exact math, and a lab that checks
every claim about it on real data.

Layers, from the math to the command line (imports point one way):
``functional`` <- ``theory`` <- ``nn`` <- ``flows`` <- ``diagnostics`` <- ``experiments`` <- ``cli``.
``data`` (loaders) and ``lab`` (runner, store, backends, statistics) sit beside them;
``report`` reads the result store only.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
