"""User-facing errors: the CLI prints their message on one line and exits 2, no traceback."""


class UserError(Exception):
    """A mistake in what the user asked for (config, file, argument). The message names the key
    or path, what is wrong and what is allowed."""


class ConfigError(UserError):
    """A bad configuration key or value."""


class DataError(UserError):
    """A dataset that cannot be loaded as configured (unknown name, missing files, bad option)."""
