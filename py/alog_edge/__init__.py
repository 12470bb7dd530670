"""alog-edge: log anomaly detection from raw logs to edge devices."""

__version__ = "0.1.0"
