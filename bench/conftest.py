"""Benchmarks: run with ``ci/bench`` (or ``pytest bench --benchmark-timer=time.process_time``).

Every group holds the native twin, the pure twin and the reference implementation measured
side by side in the same run, so ratios are comparable on a shared, noisy machine.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for ``bench.corpus``


def native(name: str) -> ModuleType:
    """The compiled twin of ``hs._native.<name>``; the benchmark is skipped without it."""
    if os.environ.get("HS_NO_EXTENSIONS"):
        pytest.skip("HS_NO_EXTENSIONS is set")
    try:
        return importlib.import_module(f"hs._native._{name}_c")
    except ImportError as exc:
        pytest.skip(f"_{name}_c not built: {exc}")


def pure(name: str) -> ModuleType:
    return importlib.import_module(f"hs._native._{name}_py")
