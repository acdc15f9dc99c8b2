"""Suite-wide set-up: generated data sets are cached in a temporary folder, never the user's;
the library's logger is restored after each test."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory):
    """Point ``XDG_CACHE_HOME`` (MNIST-1D's .npz cache) at one temporary folder for the session."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(autouse=True)
def _library_logger_restored():
    """Undo what a CLI command run in-process does to the ``lightreg`` logger (its rich handler),
    so that a later test sees the library's logging as a fresh process would."""
    import logging

    logger = logging.getLogger("lightreg")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    yield
    logger.handlers[:] = handlers
    logger.propagate, logger.level = propagate, level
