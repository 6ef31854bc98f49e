"""The ``complaints`` command."""
