"""theory: the maths of both papers, symbolic (sympy) and numeric (torch). No I/O, no other
dmrules package imported.

Public names (other tools call them; keep them stable):
    ddpm_schedule, DDPMSchedule, ou_alpha, ou_beta     forward processes     (theory.schedules)
    TwoPatchSignalNoise, RulePatches                   data laws and scores  (theory.distributions)
"""

from theory.schedules import DDPMSchedule, ddpm_schedule, ou_alpha, ou_alpha_beta, ou_beta  # noqa: F401

try:  # filled in as the package grows
    from theory.distributions import RulePatches, TwoPatchSignalNoise  # noqa: F401
except ImportError:  # pragma: no cover - only while theory.distributions is being written
    pass
