"""Experiments made of many independent, resumable runs (issue 14): rule clocks, held-out band.

- :mod:`fullscale.experiments.clocks`: one run = (task, n, seed[, held-out band]) trained once and
  evaluated at fixed training budgets counted in images;
- :mod:`fullscale.experiments.launch`: the manifest and its launchers (local process pool, submitit);
- :mod:`fullscale.experiments.aggregate`: the tidy tables (clocks, disjoint split, band points).
"""
