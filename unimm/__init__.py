"""unimm: a plugin-based framework for multimodal (image + text) transformers.

Importing ``unimm`` is light (no torch): the command line stays fast, and parts are
imported when a run needs them (``unimm.plugins.import_builtins``).
"""
__version__ = "0.1.0"
