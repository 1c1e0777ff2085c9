"""Client-server API endpoints (``/_matrix/client``)."""
