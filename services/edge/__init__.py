"""The edge: HTTP for browsers (SSE progress, the Connect protocol, the export page).

A gRPC client of render_api and progress, nothing more: no render logic, no database or
Redis of its own. Every request carries the caller's token to the services, which decide.
"""
