"""Persistence: one small ``Database`` API over SQLite (embedded default) and PostgreSQL.

Stores (``hs.storage.<area>``) write portable SQL once against ``Database``; schemas are
versioned per area (``hs.storage.migrations``); stream positions that clients page through
come from ``hs.storage.streams``; ``hs.storage.port_db`` moves a server from SQLite to
PostgreSQL.
"""

from __future__ import annotations

from hs.storage.database import (
    Database,
    DatabaseConfig,
    DatabaseError,
    ForeignKeyViolation,
    IntegrityError,
    Row,
    SchemaError,
    Transaction,
    TransactionConflict,
    UniqueViolation,
    open_database,
    placeholders,
)

__all__ = [
    "Database",
    "DatabaseConfig",
    "DatabaseError",
    "ForeignKeyViolation",
    "IntegrityError",
    "Row",
    "SchemaError",
    "Transaction",
    "TransactionConflict",
    "UniqueViolation",
    "open_database",
    "placeholders",
]
