"""The rule-clock reading (reports/figures/rule_clocks.py): when each clock fires, and not on a handful."""

import pandas as pd

from reports.figures.rule_clocks import MIN_COUNT, reached


def _run(rows):
    cols = ["kimg", "parsed", "n_novel", "coarse_violation_rate", "novel_conform_pct", "train_conform_pct", "copy_rate"]
    return pd.DataFrame(rows, columns=cols)


def test_clocks_fire_at_the_first_budget_that_holds_on_enough_samples():
    g = _run([[40, 4, 4, 0.0, 100.0, 100.0, 0.0],  # 0 of 4 parsed violate, 4 of 4 novel conform: too few
              [80, 200, 2, 0.02, 100.0, 100.0, 0.3],  # 2 % violations; 2 novel samples, both conforming
              [160, 250, MIN_COUNT, 0.004, 96.0, 100.0, 0.6],
              [20, 100, 100, 0.5, 10.0, 100.0, 0.0]])  # unsorted on purpose
    assert reached(g) == (160.0, 160.0, 160.0)
    assert reached(g[g.kimg < 160]) == (None, None, None)
