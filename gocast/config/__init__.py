"""
GoCast configuration: the VIBE format, the schema, and loading with errors
that name the file, line, column and key.
"""

from ._load import (
    LoadedConfig,
    default_config,
    dump_config,
    format_for,
    load_config,
    parse_config,
    render_issues,
)
from ._ladder import all_variants, hls_variants, transcoding_outputs, with_transcoding_outputs
from ._locate import ConfigChoice, find_config
from ._mount import MountConfig
from ._report import ConfigError, Issue
from ._schema import DEFAULT_PASSWORD, EVENT_NAMES, PERMISSIONS, Config, LimitsConfig, is_reserved

__all__ = [
    "all_variants",
    "Config",
    "ConfigChoice",
    "ConfigError",
    "DEFAULT_PASSWORD",
    "EVENT_NAMES",
    "Issue",
    "LimitsConfig",
    "LoadedConfig",
    "MountConfig",
    "PERMISSIONS",
    "default_config",
    "dump_config",
    "find_config",
    "format_for",
    "hls_variants",
    "is_reserved",
    "load_config",
    "parse_config",
    "render_issues",
    "transcoding_outputs",
    "with_transcoding_outputs",
]
