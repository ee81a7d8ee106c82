"""Persistence: the video_renders table, engines for PostgreSQL and SQLite, migrations."""
