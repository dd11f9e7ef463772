"""Command-line entry points (``unimm_run``, ``unimm_registry``); heavy modules load lazily."""
