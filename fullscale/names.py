"""The full-scale toolkit's name lists, each written once (issue 13: one owner per fact).

Standard library only: the CLI (``dmrules.commands``) offers these as ``choices`` at start-up without
importing torch, and each registry below builds itself from the same tuple, so a name added here and
to its registry is a CLI choice too. Order is the registry's (and the ``--help`` text's) order.

| tuple          | registry that uses it                                     |
|----------------|-----------------------------------------------------------|
| MODELS         | ``fullscale.models.MODELS`` (``build(name)``)             |
| DENOISERS      | ``fullscale.baselines.DENOISERS`` (closed-form denoisers) |
| OBJECTIVES     | ``fullscale.objectives.OBJECTIVES`` (its classes' names)  |
| SAMPLERS       | ``fullscale.samplers.SAMPLERS``                           |
| PRESETS        | ``fullscale.presets`` (DDPM runs), ``fullscale.classify.config`` |
| CLASSIFIER_*   | ``fullscale.classify.nets`` (noisy guides, clean filters) |

Tasks have their own registry (``fullscale.tasks.registry``), also torch-free.
"""

MODELS = ("unet", "unet-small", "unet-small-p2", "dit-s2", "dit-b2", "mlp")
DENOISERS = ("empirical", "local", "gaussian")
OBJECTIVES = ("eps", "x0", "v", "flow")
SAMPLERS = ("ddpm", "ddim", "dpm++2m", "euler", "heun")
PRESETS = ("paper", "cpu", "smoke")
NOISY_CLASSIFIERS = ("unet", "mlp")  # noisy classifiers (guidance)
CLEAN_CLASSIFIERS = ("mlp", "conv", "resnet8")  # clean classifiers (filtering)
CLASSIFIERS = ("unet", "mlp", "conv", "resnet8")  # every classifier architecture, in --help order
