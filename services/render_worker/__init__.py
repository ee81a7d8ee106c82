"""render_worker: consumes render:jobs and runs renders on the SSR or Lambda engine."""
