"""Choose the Cython module or its pure twin, once, at import time."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

#: ``HS_NO_EXTENSIONS=1`` forces every selector onto the pure-Python twin.
NO_EXTENSIONS = os.environ.get("HS_NO_EXTENSIONS", "") not in ("", "0")
#: ``HS_REQUIRE_EXTENSIONS=1`` turns a missing extension into an ImportError (CI, wheels).
REQUIRE_EXTENSIONS = os.environ.get("HS_REQUIRE_EXTENSIONS", "") not in ("", "0")

#: name -> "native" | "python (reason)"
STATUS: dict[str, str] = {}


def load(name: str) -> ModuleType:
    """Return ``hs._native._{name}_c`` or, failing that, ``hs._native._{name}_py``."""
    if NO_EXTENSIONS:
        STATUS[name] = "python (HS_NO_EXTENSIONS is set)"
    else:
        try:
            module = importlib.import_module(f"hs._native._{name}_c")
        except ImportError as exc:
            if REQUIRE_EXTENSIONS:
                raise ImportError(
                    f"hs._native._{name}_c is required (HS_REQUIRE_EXTENSIONS) but failed: {exc}"
                ) from exc
            STATUS[name] = f"python (extension not built: {exc})"
        else:
            STATUS[name] = "native"
            return module
    return importlib.import_module(f"hs._native._{name}_py")
