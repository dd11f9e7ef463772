"""A user plugin folder: registers a model and a dataset (loaded with env.user_dir=...)."""
from . import parts  # noqa: F401
