"""One module per figure or table; each defines ``FIGURES: list[reports.pipeline.Figure]``.
The drawn files are written next to these modules, as ``reports/figures/<name>.png`` (or .md)."""
