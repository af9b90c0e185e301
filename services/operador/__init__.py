"""The reprocessing operator: runs a `Reprocessing` resource's command as a Kubernetes Job.

`python -m operador` runs it; see `handlers` for what it does and `docs/reprocessing.md` for
how to use it.
"""
