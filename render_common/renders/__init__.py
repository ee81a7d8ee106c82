"""The render's life in one place: its states and stages (`states`), the typed record of a
row (`record`) and the transitions that move a render between states (`transitions`).

Import the submodules directly; this package imports nothing at import time so that the
database schema can use the states without a cycle.
"""
