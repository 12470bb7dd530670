"""Set-up: what `invoke setup` installs (Python packages, Debian packages, the native dependencies, the board)."""
