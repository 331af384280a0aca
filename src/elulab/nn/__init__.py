"""Modules: ELU-family activations, the activation registry, initialisers, SNNs.

Public names are re-exported here; implementations live in private files.
"""

# --- activations and registry (_activations.py) ---

# --- initialisers and self-normalising networks (_init.py, _snn.py) ---

# --- swapping activations in a model (_swap.py) ---
