"""Configuration: Redis 7.0's option table, redis.conf/command-line loading, CONFIG GET/SET/REWRITE.

Bottom of the import chain: imports only the standard library. CONFIG errors are raised as
`ConfigSetError` (its `.message` is Redis's exact reply text); the command layer converts them to
`protocol.errors.CommandError`. Startup errors are `ConfigError` with a one-line message.
"""

from __future__ import annotations

from config.options import (
    OPTIONS,
    REDIS_VERSION,
    USAGE,
    VERSION,
    Config,
    ConfigApplyError,
    ConfigError,
    ConfigSetError,
    Option,
    help_or_version,
    load,
    lookup_option,
    parse_memory,
    quote_arg,
    render_default_conf,
    split_args,
    split_args_bytes,
    stringmatch,
    version_text,
)

__all__ = [
    "VERSION", "REDIS_VERSION", "USAGE",
    "ConfigError", "ConfigSetError", "ConfigApplyError",
    "Option", "OPTIONS", "lookup_option",
    "Config", "load", "help_or_version", "version_text", "render_default_conf",
    "split_args", "split_args_bytes", "quote_arg", "stringmatch", "parse_memory",
]
