"""The locality ladder's theory rung as a table (issue 14, Sec. 2): the rules law (``theory.RulePatches``)
sampled with the exact score and with the DSM-optimal patch-wise score (``theory.sampling``), per
sampler and seed, with the samples' rule residual ||x(1)|| + ||x(2)|| - 1 and the paper-style fit.

``dmrules ladder --theory --out F.parquet`` writes it (one tidy row per score x sampler x seed).
"""

from __future__ import annotations

from theory.schedules import VPProcess

PROCESS = VPProcess()  # the DDPM process (T = 1000): its grid and its last noisy step
# (DDIM steps, eta): the cpu preset's, its ODE, ancestral-like (all T-1 = 999 steps)
SAMPLERS = ((100, 1.0), (100, 0.0), (PROCESS.t_max, 1.0))


def theory_rung(n: int = 2000, d: int = 8, seeds=(0, 1, 2), samplers=SAMPLERS, zeta="uniform", log=print):
    """One row per (score, steps, eta, seed): ``theory.sampling.rule_summary`` of ``n`` samples, and
    the scale-free L_t (``theory.bound``) at the sampler's last noisy step for reference."""
    import math

    import pandas as pd

    from theory import RulePatches, bound
    from theory import sampling as S

    law = RulePatches(d, zeta)
    t_last = -0.5 * math.log(float(PROCESS.schedule.alpha_bar[PROCESS.t_min]))
    l_last = float(bound(t_last, zeta, scaled=True))
    rows = []
    for score in S.SCORES:
        for steps, eta in samplers:
            for seed in seeds:
                x = S.sample_rules(law, n, score, steps=steps, eta=eta, seed=seed)
                row = {"score": score, "steps": int(steps), "eta": float(eta), "seed": int(seed), "d": int(d),
                       "zeta": law.zeta.describe(), **S.rule_summary(x, d), "bound_scaled_t1": l_last}
                rows.append(row)
                log(f"[ladder theory] {score} DDIM {steps} eta {eta:g} seed {seed}: residual std "
                    f"{row['residual_std']:.4f}, R2 {row['r2']:.4f}, conform {row['conform_pct']:.1f} %")
    return pd.DataFrame(rows)
