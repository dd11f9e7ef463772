"""unimm: a plugin-based framework for multimodal (image + text) transformers.

Importing ``unimm`` is light (no torch): the command line stays fast, and parts are
imported when a run needs them (``unimm.plugins.import_builtins``).

The import surface a plugin may rely on, kept stable (a moved name gets a deprecation path or
a clear message, ``unimm._moved``):

- ``unimm.registry``: the registries (``MODELS``, ``DATASETS``, ``METRICS`` ...), ``Registry``,
  ``Part``, ``current_path``;
- ``unimm.interfaces``: the Protocols every kind of part satisfies;
- ``unimm.config``: ``ConfigError``, ``load_config``, ``validate_config``; ``unimm.config.refs``:
  ``DatasetName``, ``MetricKey``, ``EveryDataset``, ``Range`` for builder signatures;
- ``unimm.models.encoded_sequence.EncodedSequence``, the encoders' output;
- ``unimm.training.distributed``: ``get_rank``, ``get_world_size``, ``all_gather_object``,
  ``reduce_dict``; ``unimm.metrics.base.Sums`` (a metric's sums added up over the ranks);
- ``unimm.data.common``, ``unimm.data.files``: the dataset readers' helpers.
"""
from unimm import _moved

__version__ = "0.1.0"

_moved.install()
