"""The ``core`` storage area: schema bookkeeping and stream positions (schema/ only)."""
