"""Recipe paths and the test-split monitor rule: what mutation testing showed no test pinned down.

File-name limits are Linux's: PATH_MAX 4096 bytes, NAME_MAX 255 bytes per component.
"""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from lightreg.recipe.schema import LoggingConfig, monitor_on_test_split

# 20 components of 200 bytes and one of 76, joined by 20 slashes: exactly 4096 bytes.
LONGEST = "/".join(["a" * 200] * 20 + ["a" * 76])


def _refused(path: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        LoggingConfig(dir=path)


@pytest.mark.parametrize("path", [LONGEST, "runs/" + "b" * 255])
def test_paths_at_the_limits_are_accepted(path: str) -> None:
    assert len(path.encode()) == 4096 or max(len(p) for p in path.split("/")) == 255
    assert str(LoggingConfig(dir=path).dir) == path


@pytest.mark.parametrize("path", [LONGEST + "a", "runs/" + "b" * 256])
def test_paths_past_the_limits_are_refused(path: str) -> None:
    _refused(path, "too long for a file name: over 4096 bytes, or a part over 255 (got '")


def test_refusal_shows_the_path_shortened() -> None:
    # short_repr keeps the quotes, the first 27 and last 28 characters, and '...' between.
    _refused("b" * 300, f"(got '{'b' * 27}...{'b' * 28}')")


def test_nul_byte_refusal_shows_the_path() -> None:
    _refused("runs\0x", r"must not contain a NUL byte (got 'runs\x00x')")


def test_unencodable_path_is_refused_with_the_path() -> None:
    _refused("\ud800", r"cannot be encoded as a file name (got '\ud800')")


def test_test_split_monitor_reason_in_full() -> None:
    assert monitor_on_test_split("test_loss") == (
        "early_stopping.monitor = 'test_loss': the test split is scored once, after fit, so it "
        "cannot pick the stopping epoch or the best checkpoint; choosing on it leaks test data "
        "into the model and the test score is no longer unbiased; monitor val_loss"
    )
