"""Scoring and metrics: DeepLog per session and line, MSCRED per time window, parser accuracy, tables."""
