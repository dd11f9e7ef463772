"""Fusion modules: an image sequence and a text sequence -> joint states (``FUSIONS``).

Co-attention and merged attention (METER Sec. 3.3) register here.
"""
