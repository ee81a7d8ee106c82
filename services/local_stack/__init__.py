"""The local stack: Redis (if none is configured), render_api, progress and a worker, supervised."""
