"""Offline HTML pages: the report of runs, evaluations and benchmarks (build.py) and the dataset view (view.py)."""
