"""sims package (see README.md)."""
