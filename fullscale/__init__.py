"""fullscale package (see README.md)."""
