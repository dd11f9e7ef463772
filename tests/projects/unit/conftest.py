"""The model tests' dataset_info and batches (tests/models/conftest.py)."""
from tests.models.conftest import batches, dataset_info  # noqa: F401  (fixtures)
