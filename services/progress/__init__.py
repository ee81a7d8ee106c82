"""progress: pushes render events (WatchRender, WatchRenders) fanned out from Redis streams."""
