"""Render engines behind one interface: SSR (our workers) and Lambda (Remotion Lambda)."""
