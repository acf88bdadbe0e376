from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _restore_runtime_log_level():
    """runtime.live.main() sets the 'runtime' logger level; keep that from leaking between tests."""
    logger = logging.getLogger("runtime")
    level = logger.level
    yield
    logger.setLevel(level)
