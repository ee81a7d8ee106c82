"""Shared code of the render-export services: config, storage of renders, streams, auth."""
