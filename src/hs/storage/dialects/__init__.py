"""Engine-specific implementations of ``hs.storage.database.Database``."""
