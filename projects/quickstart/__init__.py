"""Quickstart: a tiny classifier on Gaussian blobs, the smallest end-to-end unimm run.

This folder is a plugin (the config names it in ``env.user_dir``): importing it registers
the dataset and the model that the YAML composes with unimm's built-in parts.
"""
from . import blobs  # noqa: F401
