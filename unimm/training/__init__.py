"""Training: the loop (``unimm.training.trainer``) and the registered pieces that vary it.

Importing this package registers the task samplers, step strategies, optimizers,
learning-rate schedulers and optimizer hooks; the loop is imported where a run starts.
"""
from unimm.training import callbacks, hooks, optimizers, samplers, schedulers, steps  # noqa: F401 (registers parts)
