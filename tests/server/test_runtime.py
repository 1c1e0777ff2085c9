"""Process settings applied by ``hs run``: collector thresholds and large-block release."""

from __future__ import annotations

import gc
import sys

import pytest

from hs.runtime import return_large_blocks, tune_gc


def test_tune_gc_freezes_the_startup_heap_and_sets_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_gc((50_000, 20, 100))
        assert gc.get_threshold() == (50_000, 20, 100)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_large_blocks_are_served_by_mmap_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert return_large_blocks() is True
