"""Intake worker: validate, normalise, de-duplicate and register complaints (受理)."""
