"""Optional dependencies: simulators and file-format libraries are pip extras, imported on use,
so the core install stays light and a missing one fails in one line that says what to install."""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def require(module: str, extra: str, what: str = "this task") -> ModuleType:
    """Import an optional package, or fail in one line naming the pip extra that provides it."""
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # import-time notices
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{what} needs the '{extra}' extra: pip install 'protege[{extra}]' (import {module} failed: {error})"
        ) from error
