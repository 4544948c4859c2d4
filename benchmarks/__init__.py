"""The one_store benchmark harness (run it with ``python benchmarks/run.py``)."""
