"""reports: turns result tables into the papers' figures, tables and reports/REPORT.md.

Figure modules live in :mod:`reports.figures`; each defines ``FIGURES`` (a list of
:class:`reports.pipeline.Figure`). ``python -m reports`` (``make figures``) computes the results
they need through the ``dmrules`` CLI (cached by a hash of their config), draws them, and writes
the report. A figure module never trains a model: it only reads tables.
"""
