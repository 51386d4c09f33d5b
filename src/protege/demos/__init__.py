"""Demonstrations in: a task's scripted expert, or demonstrators of mixed quality built around it,
driven through the shared runner and written as a dataset."""
