"""Request-independent logic between the thin HTTP layer and storage."""
