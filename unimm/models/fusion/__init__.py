"""Fusion modules: an image sequence and a text sequence -> joint states (``FUSIONS``).

Co-attention and merged attention (METER Sec. 3.3) register here.
"""
from unimm.models.fusion import co_attention, merged_attention  # noqa: F401  (fusions: co_attention, merged_attention)
