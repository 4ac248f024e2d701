"""sims: two-layer networks trained by DSM and by classification, stacked (docs/sims.md).

Modules (one concern each):
    networks     stacked tied score network, two-layer classifier, losses       (feature-learning paper §2-3)
    rulenets     stacked patch-wise / joint score networks for the rules law     (rules paper §4, our reconstruction)
    train        stacked GD, the exact span reduction, logging grid, checkpoints
    fl           feature-learning sweeps: data, metrics, training of one stack
    digits       Noisy-Digits (sklearn 8x8 digits + Gaussian patch)
    rules        rule-conformity sweeps: psi_t, E_t against L_t
    analysis     slopes against n·SNR², the classification switch
    experiments  presets (FL_PRESETS, RULES_PRESETS, DIGITS_PRESETS) and the resumable sweep driver

Command line: ``dmrules sims fl | rules | digits`` (``dmrules/commands/sims.py``).
"""
