"""The native side: the C runtime's dependencies, build and fuzzers."""
