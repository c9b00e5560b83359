"""condsynth: conditional visual synthesis in PyTorch.

Layers (each imports only the ones above it): io -> data -> nn -> losses -> metrics -> models
-> engine -> pipelines -> demo -> cli.
"""

__version__ = "0.1.0"

from condsynth.errors import UserError  # noqa: F401  (re-exported: the one exception users catch)
