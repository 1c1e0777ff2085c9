"""Server-server transport: discovery, outbound client, keys, request authentication."""
