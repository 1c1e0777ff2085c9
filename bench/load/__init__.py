"""Client-server load benchmarks of hs against Synapse (``python -m bench.load --help``)."""
