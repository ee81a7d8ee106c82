"""render_api: intake of renders (auth, validation, quotas, cost guard, idempotency, enqueue)."""
