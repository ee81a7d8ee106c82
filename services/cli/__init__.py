"""The `render` command-line client."""
