"""HTTP plumbing shared by every API: errors, JSON bodies, middleware, metrics, rate limits."""
