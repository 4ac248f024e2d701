"""One owner per fact (issue 13): time belongs to the noise process (``theory.schedules``), name lists
to their registries, and nothing else writes them again."""

from __future__ import annotations

import ast
import io
import math
import tokenize
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("dmrules", "fullscale", "theory", "sims", "reports", "benchmarks")
TIME_OWNER = ROOT / "theory" / "schedules.py"


def _code_numbers(path: Path, value) -> list[int]:
    """Lines of ``path`` with a NUMBER token equal to ``value`` (comments and strings, docstrings
    included, are other tokens, so they never count)."""
    lines = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.NUMBER and ast.literal_eval(tok.string) == value:
            lines.append(tok.start[0])
    return lines


def _python_files():
    for d in CODE_DIRS:
        yield from sorted((ROOT / d).rglob("*.py"))


def test_the_number_finder_can_fail(tmp_path):
    f = tmp_path / "x.py"
    f.write_text('"""999 in a docstring"""\n# 999 in a comment\ns = "999"\nsteps = 999\nbeta = 0.999\nn = 0x3E7\n')
    assert _code_numbers(f, 999) == [4, 6]


def test_no_literal_999_outside_the_noise_process():
    """The DDPM step count T - 1 is read from the process (``VPProcess().t_max``), never written."""
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in _python_files() if p != TIME_OWNER
                 for line in _code_numbers(p, 999)]
    assert not offenders, f"literal 999 in code (read it from theory.schedules.VPProcess): {offenders}"


# The grid every DDIM-style sampler used before issue 13 gave it one owner, frozen here as the reference.
def _old_grid(steps: int) -> list[int]:
    if steps == 1:
        return [999]
    return sorted({round(999 - k * 998 / (steps - 1)) for k in range(steps)}, reverse=True)


def test_the_one_grid_is_the_old_grid():
    from theory import sampling as S
    from theory.schedules import VPProcess

    p = VPProcess()
    for n in (1, 2, 3, 7, 10, 50, 100, 333, 500, 998, 999):
        assert p.grid(n) == _old_grid(n), n
        assert S.ddim_timesteps(n) == p.grid(n), n
    with pytest.raises(ValueError):
        S.ddim_timesteps(p.t_max + 1)
    with pytest.raises(ValueError):
        S.ddim_timesteps(2.5)


def test_cli_step_bound_mirrors_the_process():
    """The CLI's torch-free mirror of T (dmrules.commands.DDPM_T) is the process's."""
    import inspect

    from dmrules import commands
    from theory.schedules import VPProcess, ddpm_schedule

    assert commands.DDPM_T == inspect.signature(ddpm_schedule).parameters["T"].default == VPProcess().T
    assert commands.T_MAX == VPProcess().t_max


def test_scalar_ou_pair_is_the_ou_pair():
    """``ou_alpha_beta2_float`` (libm) and the tensor ``ou_alpha`` / ``ou_beta`` agree to rounding."""
    from theory.schedules import ou_alpha, ou_alpha_beta2_float, ou_beta

    for t in (1e-6, 1e-3, 0.1, 0.2231435513142097, 1.0, 7.5):
        a, b2 = ou_alpha_beta2_float(t)
        assert a == math.exp(-t) and b2 == -math.expm1(-2.0 * t)  # the arithmetic its callers used
        assert math.isclose(a, float(ou_alpha(t)), rel_tol=4e-16)
        assert math.isclose(b2, float(ou_beta(t)) ** 2, rel_tol=1e-15)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            ou_alpha_beta2_float(bad)


def _ou_beta_rederived(path: Path) -> list[int]:
    """Lines of ``path`` whose code computes 1 - e^{-2t} by hand: the tokens ``expm1 ( - 2``."""
    toks = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE)]
    return [toks[i].start[0] for i in range(len(toks) - 3)
            if toks[i].string == "expm1" and toks[i + 1].string == "(" and toks[i + 2].string == "-"
            and toks[i + 3].type == tokenize.NUMBER and ast.literal_eval(toks[i + 3].string) == 2]


def test_the_ou_pair_is_written_only_by_its_owner(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import math\n# math.expm1(-2 * t)\nb2 = -math.expm1(-2.0 * t)\n")
    assert _ou_beta_rederived(f) == [3]
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in _python_files() if p != TIME_OWNER
                 for line in _ou_beta_rederived(p)]
    assert not offenders, f"beta_t^2 = 1 - exp(-2t) by hand (use theory.schedules' ou_* functions): {offenders}"


def test_the_array_ou_pair_is_numpys():
    import numpy as np

    from theory.schedules import ou_alpha_beta2_array

    t = np.array([1e-4, 0.05, 0.5, 2.0, 9.0])
    a, b2 = ou_alpha_beta2_array(t)
    assert np.array_equal(a, np.exp(-t)) and np.array_equal(b2, -np.expm1(-2 * t))
    with pytest.raises(ValueError):
        ou_alpha_beta2_array(np.array([0.1, 0.0]))


def test_classifier_times_are_the_process_times_with_index_zero():
    """The noisy classifier's t ~ U{0..T-1} through the process equals the draw it always made."""
    from fullscale import rng
    from theory.schedules import VPProcess

    p = VPProcess()
    keys = rng.derive(rng.derive(7, torch.arange(50_000)), 11)
    t = p.train_time(rng.unit64(keys), t_min=0)
    assert torch.equal(t, rng.randint(keys, 0, p.T))
    assert int(t.min()) == 0 and int(t.max()) == p.t_max
    assert int(p.train_time(rng.unit64(keys)).min()) == p.t_min  # the DDPM's own draw skips index 0


# ---- name lists: one torch-free tuple (fullscale.names), used by the registry and by the CLI


def test_registries_are_built_from_the_name_lists():
    from fullscale import baselines, models, names, objectives, presets, samplers
    from fullscale.classify import config, nets

    assert tuple(models.MODELS) == names.MODELS
    assert tuple(samplers.SAMPLERS) == names.SAMPLERS
    assert set(samplers.PROCESS_OF) == set(names.SAMPLERS)
    assert tuple(objectives.OBJECTIVES) == names.OBJECTIVES  # the classes' own names, in this order
    assert baselines.DENOISERS is names.DENOISERS
    assert tuple(presets.PRESETS) == names.PRESETS and tuple(presets.PRESET_NAMES) == names.PRESETS
    assert tuple(config.PRESETS) == names.PRESETS and config.PRESET_NAMES is names.PRESETS
    assert (nets.ARCHS, nets.NOISY_ARCHS, nets.CLEAN_ARCHS) == (
        names.CLASSIFIERS, names.NOISY_CLASSIFIERS, names.CLEAN_CLASSIFIERS)
    assert set(names.CLASSIFIERS) == set(names.NOISY_CLASSIFIERS) | set(names.CLEAN_CLASSIFIERS)


def _choices(parser, command: tuple, option: str):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command:
            return _choices(action.choices[command[0]], command[1:], option)
        if not command and option in action.option_strings:
            return tuple(action.choices)
    raise KeyError((command, option))


def test_cli_choices_are_the_name_lists():
    from dmrules.cli import build_parser
    from fullscale import names

    p = build_parser()
    assert _choices(p, ("train",), "--model") == names.MODELS
    assert _choices(p, ("run",), "--objective") == names.OBJECTIVES
    assert _choices(p, ("sample",), "--sampler") == names.SAMPLERS
    assert _choices(p, ("train",), "--preset") == names.PRESETS
    assert _choices(p, ("baseline",), "--denoiser") == names.DENOISERS
    assert _choices(p, ("classifier", "train"), "--arch") == names.CLASSIFIERS
    assert _choices(p, ("mitigate",), "--guide-arch") == names.NOISY_CLASSIFIERS
    assert _choices(p, ("mitigate",), "--filter-arch") == names.CLEAN_CLASSIFIERS


def test_spacings_are_the_grids_of_the_process():
    from fullscale import names
    from theory.schedules import VPProcess

    p = VPProcess()
    for spacing in names.SPACINGS:
        assert len(p.grid(10, spacing)) == 10
    with pytest.raises(ValueError) as err:
        p.grid(10, "karras")
    assert str(err.value).endswith("choose from " + ", ".join(names.SPACINGS))


def test_more_cli_choices_are_the_name_lists():
    from dmrules.cli import build_parser
    from fullscale import names

    p = build_parser()
    assert _choices(p, ("sample",), "--spacing") == names.SPACINGS
    assert _choices(p, ("sample",), "--variance") == names.VARIANCES
    assert _choices(p, ("sample",), "--weights") == _choices(p, ("run",), "--weights") == names.WEIGHTS
    assert set(_choices(p, ("sweep", "clocks"), "--preset")) == set(names.PRESETS)
    assert _choices(p, ("evaluate",), "--protocol") == names.EVAL_PROTOCOLS
    assert _choices(p, ("evaluate",), "--conform-category") == ("all", *names.CONFORM_CATEGORIES)


def test_the_evaluators_read_the_name_lists():
    from fullscale import names
    from fullscale.evaluate import ceiling, paper_protocol

    assert ceiling.EXACT_PROTOCOLS is names.EVAL_PROTOCOLS and ceiling.PROTOCOLS == ("precise", "paper")
    assert paper_protocol.CATEGORIES_A is names.CONFORM_CATEGORIES


def test_the_remaining_cli_mirrors_are_their_owners():
    """The CLI keeps torch-free copies of a few lists whose owners import torch; each is pinned here."""
    from dmrules import commands
    from dmrules.cli import build_parser
    from fullscale import names
    from fullscale.experiments import launch
    from sims import experiments
    from theory import checks

    p = build_parser()
    for presets in (experiments.FL_PRESETS, experiments.RULES_PRESETS, experiments.DIGITS_PRESETS):
        assert tuple(presets) == commands.SIMS_PRESETS
    for group in ("fl", "rules", "digits"):
        assert _choices(p, ("sims", group), "--preset") == commands.SIMS_PRESETS
    assert _choices(p, ("theory", "score"), "--dist") == commands.THEORY_DISTS == checks.DISTS
    for dist in checks.DISTS:
        checks.make_dist(dist, 4, 0)
    with pytest.raises(ValueError, match="rules, fl"):
        checks.make_dist("gauss", 4, 0)
    assert _choices(p, ("sweep", "clocks"), "--launcher") == names.LAUNCHERS and launch.LAUNCHERS is names.LAUNCHERS
