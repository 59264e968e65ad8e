"""User-facing errors: the CLI prints their message on one line and exits 2, no traceback."""

import argparse


class UserError(Exception):
    """A mistake in what the user asked for (config, file, argument). The message names the key
    or path, what is wrong and what is allowed."""


class ConfigError(UserError):
    """A bad configuration key or value."""


class DataError(UserError):
    """A dataset that cannot be loaded as configured (unknown name, missing files, bad option)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose mistakes end in one line (no usage block), like every other ddsweep error.
    Abbreviations are off: `--q=1` is a (wrong) config override, not `--quiet`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"ddsweep: error: {message} (see {self.prog} --help)\n")
