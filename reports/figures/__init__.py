"""One module per figure or table; each defines ``FIGURES: list[reports.pipeline.Figure]``.
The drawn files go to their own folder, apart from these modules: ``reports/plots/<name>.png`` (or .md)."""
