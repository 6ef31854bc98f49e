"""Stream workers: one package per worker (its stage's wiring and its own metrics), driven by the
generic runtime (``runtime.py``), listed in the registry (``registry.py``)."""
