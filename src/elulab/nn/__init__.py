"""Modules: ELU-family activations, the activation registry, initialisers, SNNs, RNNs.

Public names are re-exported here; implementations live in private files.
"""

# --- activations and registry (_activations.py) ---
from ._activations import ACTIVATIONS as ACTIVATIONS
from ._activations import CELU as CELU
from ._activations import ELU as ELU
from ._activations import SELU as SELU
from ._activations import Sin as Sin
from ._activations import get_activation as get_activation

# --- initialisers, recurrent and self-normalising networks (_init.py, _rnn.py, _snn.py) ---
from ._init import lecun_normal_ as lecun_normal_
from ._init import orthogonal as orthogonal
from ._rnn import VanillaRNN as VanillaRNN
from ._snn import SNN as SNN
from ._snn import AlphaDropout as AlphaDropout
from ._snn import ScaledELU as ScaledELU

# --- swapping activations in a model (_swap.py) ---
from ._swap import swap_activations as swap_activations
