"""Reusable neural-network blocks: box geometry, position encodings, DETR transformer layers,
convolutional backbones, MLPs, the Hungarian matcher and the set criterion.

Nothing here registers a part; models in ``unimm.models`` compose these blocks.
"""
