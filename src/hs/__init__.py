"""hs: a Matrix homeserver whose protocol hot paths are compiled Cython.

``hs.core`` holds the pure, I/O-free protocol logic; ``hs._native`` holds the Cython
accelerators, each with a pure-Python twin that gives identical results.
"""

from __future__ import annotations

__version__ = "0.1.0"


def native_status() -> dict[str, str]:
    """Which implementation each accelerated module is using: ``"native"`` or ``"python (why)"``."""
    from hs._native import native_status as _status

    return _status()


__all__ = ["__version__", "native_status"]
