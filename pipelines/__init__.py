import prometheus_client  # noqa: F401  (before Feast: see serving/__init__.py)
