"""The render-export services: render_api, render_worker, progress, and the render CLI."""
