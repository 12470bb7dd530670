"""Delivery: bundles, installer, flashing over SSH and serial."""
