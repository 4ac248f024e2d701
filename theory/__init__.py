"""theory: the maths of both papers, symbolic (sympy) and numeric (torch). No I/O, no other
dmrules package imported.

Public names (other tools call them; keep them stable):
    ddpm_schedule, DDPMSchedule, ou_alpha, ou_beta,            forward processes       (theory.schedules)
    ou_alpha_beta, ou_time_from_alpha_bar,
    VPProcess, FlowProcess, make_process                       noise processes (own time; issue 13)
    TwoPatchSignalNoise, RulePatches, ZetaLaw                  data laws and scores    (theory.distributions, theory.zeta)
    psi, rule_error, bound, bound_mc, bound_class,             the rule in score space (theory.rules)
    patchwise_optimum, dsm_gap_constant_vs_optimum
    expected_dsm_loss_quadratic, FeatureLearningSetup,         feature learning        (theory.growth)
    diffusion_growth_ratio, classification_rate_ratio, snr, n_snr2
Submodules imported on demand: ``theory.symbolic`` (sympy derivations), ``theory.checks`` (the
self-checks behind ``dmrules theory check``), ``theory.montecarlo`` (importance-sampling references).
"""

from theory.distributions import RulePatches, TwoPatchSignalNoise  # noqa: F401
from theory.growth import (  # noqa: F401
    FeatureLearningSetup,
    classification_early_rates,
    classification_rate_ratio,
    diffusion_early_increments,
    diffusion_growth_ratio,
    expected_dsm_loss_quadratic,
    n_snr2,
    snr,
)
from theory.rules import (  # noqa: F401
    DSMGap,
    RuleError,
    bound,
    bound_class,
    bound_mc,
    dsm_gap_constant_vs_optimum,
    patchwise_optimum,
    psi,
    rule_error,
)
from theory.schedules import (  # noqa: F401
    FlowProcess,
    VPProcess,
    make_process,
    DDPMSchedule,
    ddpm_schedule,
    ou_alpha,
    ou_alpha_beta,
    ou_beta,
    ou_time_from_alpha_bar,
)
from theory.zeta import ZetaLaw, as_zeta_law  # noqa: F401
