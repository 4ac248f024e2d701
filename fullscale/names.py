"""The full-scale toolkit's name lists, each written once (issue 13: one owner per fact).

Standard library only: the CLI (``dmrules.commands``) offers these as ``choices`` at start-up without
importing torch, and each registry below builds itself from the same tuple, so a name added here and
to its registry is a CLI choice too. Order is the registry's (and the ``--help`` text's) order.

| tuple          | registry that uses it                                     |
|----------------|-----------------------------------------------------------|
| MODELS         | ``fullscale.models.MODELS`` (``build(name)``)             |
| DENOISERS      | ``fullscale.baselines.DENOISERS`` (closed-form denoisers) |
| OBJECTIVES     | read from ``fullscale/objectives.py``'s classes (``ast``, no import) |
| SAMPLERS       | ``fullscale.samplers.SAMPLERS``                           |
| PRESETS        | ``fullscale.presets`` (DDPM runs), ``fullscale.classify.config`` |
| CLASSIFIER_*   | ``fullscale.classify.nets`` (noisy guides, clean filters) |
| SPACINGS       | ``VPProcess.grid``'s ``spacing`` (theory imports nothing of ours; a test pins them) |
| VARIANCES      | ``fullscale.samplers.ddpm``'s ``variance`` (sigma_i^2)    |
| WEIGHTS        | ``fullscale.generate``: sample the EMA or the raw weights |
| EVAL_PROTOCOLS | ``fullscale.evaluate.ceiling.EXACT_PROTOCOLS``, ``dmrules evaluate --protocol`` |
| CONFORM_CATEGORIES | ``fullscale.evaluate.paper_protocol.CATEGORIES_A`` (Task A's d lists) |
| LAUNCHERS      | ``fullscale.experiments.launch`` (``dmrules sweep clocks --launcher``) |

Tasks have their own registry (``fullscale.tasks.registry``), also torch-free.
"""

MODELS = ("unet", "unet-small", "unet-small-p2", "dit-s2", "dit-b2", "mlp")
DENOISERS = ("empirical", "local", "gaussian")


def _declared_names(module: str, base: str) -> tuple:
    """The ``name = "..."`` of every class deriving from ``base`` in ``fullscale/<module>.py``, in source
    order, read from the source with ``ast`` (no import, so no torch): the module stays the one owner of
    its names and adding a class there is enough (issue 13: an objective in one file)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parent / f"{module}.py").read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id == base for b in node.bases):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and [getattr(t, "id", None) for t in stmt.targets] == ["name"]
                        and isinstance(stmt.value, ast.Constant) and stmt.value.value):
                    found.append(stmt.value.value)
    return tuple(found)


OBJECTIVES = _declared_names("objectives", "Objective")  # ("eps", "x0", "v", "flow"): the classes of objectives.py
SAMPLERS = ("ddpm", "ddim", "dpm++2m", "euler", "heun")
PRESETS = ("paper", "cpu", "smoke")
NOISY_CLASSIFIERS = ("unet", "mlp")  # noisy classifiers (guidance)
CLEAN_CLASSIFIERS = ("mlp", "conv", "resnet8")  # clean classifiers (filtering)
CLASSIFIERS = ("unet", "mlp", "conv", "resnet8")  # every classifier architecture, in --help order
SPACINGS = ("even", "linspace", "leading", "trailing")  # few-step grids (ours; diffusers' timestep_spacing)
VARIANCES = ("beta", "posterior")  # the ancestral sampler's sigma_i^2: beta_i (IDDM) or beta~_i (Ho et al. Eq. 7)
WEIGHTS = ("ema", "raw")
EVAL_PROTOCOLS = ("precise", "paper", "paper-train")  # our evaluator; the authors' on generated / training images
CONFORM_CATEGORIES = ("lnd", "lfd", "rnd", "rfd")  # the four d lists of the authors' Task A notebook (cell 10)
LAUNCHERS = ("local", "slurm", "submitit-local", "submitit-debug")  # a sweep's runs: process pool or submitit
