"""Delivery to devices: bundles, the installer, flashing over SSH and serial."""
