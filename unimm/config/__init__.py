"""Configuration: load YAML with ``includes:``, apply overrides, validate, save."""
from unimm.config.errors import ConfigError
from unimm.config.loader import flatten, load_config, parse_overrides
from unimm.config.validate import validate_config

__all__ = ["ConfigError", "flatten", "load_config", "parse_overrides", "validate_config"]
