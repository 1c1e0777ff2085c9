from typing import Any

MAX_NESTING: int
MAX_SAFE_INTEGER: int
MIN_SAFE_INTEGER: int

def encode_canonical_json(value: Any) -> bytes: ...
