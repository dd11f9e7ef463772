"""Registered metrics; each module registers its own."""
from unimm.metrics import accuracy  # noqa: F401
