"""Signed bundles, the device installer's host side, and flashing (see README: Bundles)."""
