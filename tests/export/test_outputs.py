"""export.outputs.stage: a user error is reported once (by the command), a bug as an error."""

import logging

import pytest

from export.outputs import stage
from runtime.common.errors import ExportError


@pytest.mark.parametrize("error, level", [(ExportError("bad input"), logging.DEBUG),
                                          (OSError(28, "No space left on device"), logging.DEBUG),
                                          (KeyError("a bug"), logging.ERROR)])
def test_stage_logs_a_user_error_at_debug_and_a_bug_as_an_error(caplog, error, level):
    with caplog.at_level(logging.DEBUG, logger="export.build_engine"), pytest.raises(type(error)):
        with stage("s"):
            raise error
    failed = [r for r in caplog.records if "[s] failed after" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == level
