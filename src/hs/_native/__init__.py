"""Cython accelerators, each a trio as in aio-libs' yarl/multidict.

For a hot path ``x``:

* ``_x_c.pyx`` - the Cython implementation (built by ``setup.py`` when a compiler exists);
* ``_x_py.py`` - the pure-Python twin, giving identical results;
* ``x.py``     - the selector that the rest of hs imports: it loads ``_x_c`` unless
  ``HS_NO_EXTENSIONS`` is set or the import fails, and otherwise ``_x_py``.

``native_status()`` reports what each selector picked. Tests import both twins directly
and run every case against each.
"""

from __future__ import annotations

import importlib

from hs._native._loader import NO_EXTENSIONS, STATUS

# Every accelerated module; importing the selectors fills STATUS.
MODULES = (
    "canonical_json",
    "json_scan",
    "event_hash",
    "push",
    "state_sort",
    "dag",
    "power_levels",
    "auth_rules",
)


def native_status() -> dict[str, str]:
    for name in MODULES:
        try:
            importlib.import_module(f"hs._native.{name}")
        except ImportError as exc:  # a selector not written yet, or a broken twin
            STATUS.setdefault(name, f"unavailable ({exc})")
    return dict(STATUS)


__all__ = ["MODULES", "NO_EXTENSIONS", "native_status"]
