"""The task registry (issue 13): the one list of tasks, and what each task module declares.

    from fullscale.tasks import registry
    registry.names()            # ('A', 'B', 'C', 'D') plus any registered task
    spec = registry.get("C")    # a Task: spec.rule_slope, spec.paper_n, spec.color, spec.sample(...)
    registry.register(module)   # add a task (a module following the contract below)

CLI choices, presets (``fullscale.presets``), figures (``reports.style.TASK_COLORS``) and data seeds
read from here. Importing this module costs nothing (standard library only; a task's module is
imported the first time it is asked for), so the CLI reads its ``--task`` choices at start-up.

A task module declares (see ``task_a`` ... ``task_d``, docs/extending.md "Add a task"):

==================  ======================================================================
``NAME``            the task's name on the command line (``"A"``)
``TITLE``           a few words for ``--help`` (``"sun, pole and shadow"``)
``sample``          ``sample(rng, n, *, contrastive, violate)`` -> (shapes, features, labels)
``RULE_SLOPE``      the fine rule's slope g in (rule_x, rule_y)
``COARSE_RULE``     the coarse rule in words; ``coarse_ok`` column computed by ``sample``/``measured``
``PAPER_N``         the paper's training-set size; ``PAPER_EPOCHS`` its epochs
``COLOR``           the task's colour in figures
``POSITION_FEATURES``, ``OBJECTS``, ``FREE_VARIABLE``   geometry, colour columns, the held-out band's variable
``EVAL_OBJECTS``    evaluator hook: ``((name, family, shape), ...)``, family warm|cool|grey, shape rect|disc
``measured``        evaluator hook: ``measured(ms, color, size)`` -> feature columns from measured objects
``STREAM_ID``       optional: the data stream id (A-D keep their historical 0..3, so their data sets are
                    unchanged; any other task gets :func:`dmrules.core.streams.name_id` of its name)
==================  ======================================================================

Extra task modules can also be named in the environment variable ``DMRULES_TASK_MODULES``
(comma-separated importable module names): they are registered on first use, so ``dmrules data
--task NAME`` works for them from the shell.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType

# the one list of built-in tasks: name -> module (imported on first use)
BUILTIN = {"A": "fullscale.tasks.task_a", "B": "fullscale.tasks.task_b",
           "C": "fullscale.tasks.task_c", "D": "fullscale.tasks.task_d"}
ENV = "DMRULES_TASK_MODULES"
REQUIRED = ("NAME", "TITLE", "sample", "RULE_SLOPE", "COARSE_RULE", "PAPER_N", "PAPER_EPOCHS", "COLOR",
            "POSITION_FEATURES", "OBJECTS", "FREE_VARIABLE", "EVAL_OBJECTS", "measured")

_EXTRA: dict[str, str | ModuleType] = {}  # registered tasks: name -> module (or its import name)
_LOADED: dict[str, "Task"] = {}
_ENV_DONE: list[str] = []


@dataclass(frozen=True)
class Task:
    """A registered task: its module and the constants it declares."""

    name: str
    module: ModuleType

    def __getattr__(self, item):  # the module's own declarations (sample, measured, ...)
        if item.startswith("_") or item == "module":
            raise AttributeError(item)
        return getattr(self.module, item)

    @property
    def title(self) -> str:
        return str(self.module.TITLE)

    @property
    def stream_id(self) -> int:
        """The data-stream id: declared (A-D: 0..3), else a stable hash of the name, never a list position."""
        declared = getattr(self.module, "STREAM_ID", None)
        if declared is not None:
            return int(declared)
        from dmrules.core.streams import name_id

        return name_id(self.name)

    @property
    def rule_slope(self) -> float:
        return float(self.module.RULE_SLOPE)

    @property
    def coarse_rule(self) -> str:
        return str(self.module.COARSE_RULE)

    @property
    def paper_n(self) -> int:
        return int(self.module.PAPER_N)

    @property
    def paper_epochs(self) -> float:
        return self.module.PAPER_EPOCHS

    @property
    def color(self) -> str:
        return str(self.module.COLOR)


def _check_module(module: ModuleType) -> str:
    missing = [k for k in REQUIRED if not hasattr(module, k)]
    if missing:
        raise ValueError(f"task module {module.__name__} does not declare {', '.join(missing)} "
                         "(see fullscale/tasks/registry.py)")
    name = str(module.NAME)
    if not name or any(c in name for c in ",: /") or name != name.strip():
        raise ValueError(f"task module {module.__name__}: NAME {name!r} must be a word without , : / or spaces")
    return name


def _env_modules() -> None:
    """Register the modules named in ``DMRULES_TASK_MODULES`` (once per value of the variable)."""
    value = os.environ.get(ENV, "")
    if not value or value in _ENV_DONE:
        return
    _ENV_DONE.append(value)
    for mod in filter(None, (m.strip() for m in value.split(","))):
        try:
            module = importlib.import_module(mod)
        except ImportError as exc:
            raise ValueError(f"{ENV} names {mod!r}, which cannot be imported ({exc})") from None
        if _check_module(module) not in _EXTRA and module.NAME not in BUILTIN:
            register(module)


def names() -> tuple:
    """Every task's name: the built-in ones in their order, then registered ones in name order."""
    _env_modules()
    return tuple(BUILTIN) + tuple(sorted(k for k in _EXTRA if k not in BUILTIN))


def canonical(task) -> str:
    """The registered name of ``task`` (exact, else case-insensitive), or one-sentence ``ValueError``."""
    text = str(task).strip()
    known = names()
    if text in known:
        return text
    folded = [k for k in known if k.lower() == text.lower()]
    if len(folded) == 1:
        return folded[0]
    raise ValueError(f"unknown task {task!r}: choose one of {', '.join(known)}")


def get(task) -> Task:
    """The :class:`Task` of a name (its module imported on first use); ``ValueError`` when unknown."""
    name = canonical(task)
    if name not in _LOADED:
        source = _EXTRA.get(name, BUILTIN.get(name))
        module = importlib.import_module(source) if isinstance(source, str) else source
        if _check_module(module) != name:
            raise ValueError(f"task module {module.__name__} declares NAME {module.NAME!r}, registered as {name!r}")
        _LOADED[name] = Task(name, module)
    return _LOADED[name]


def register(module: ModuleType | str, *, replace: bool = False) -> Task:
    """Add a task module (or its import name); returns its :class:`Task`.

    Refused (ValueError): a missing declaration, a name taken (unless ``replace``), or a stream id
    another task already uses (two tasks never share data draws).
    """
    if isinstance(module, str):
        module = importlib.import_module(module)
    name = _check_module(module)
    if name in BUILTIN:
        raise ValueError(f"task {name!r} is built in; choose another NAME")
    if name in _EXTRA and not replace:
        raise ValueError(f"task {name!r} is already registered (pass replace=True to swap it)")
    spec = Task(name, module)
    for other in names():
        if other != name and get(other).stream_id == spec.stream_id:
            raise ValueError(f"task {name!r} would share data stream id {spec.stream_id} with task {other!r}")
    _EXTRA[name] = module
    _LOADED[name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a registered (not built-in) task; unknown names are ignored."""
    if name in BUILTIN:
        raise ValueError(f"task {name!r} is built in and cannot be removed")
    _EXTRA.pop(name, None)
    _LOADED.pop(name, None)


def describe() -> str:
    """``A (sun, pole and shadow), B (...)``: the choices for ``--help`` texts (imports each task module)."""
    return ", ".join(f"{k} ({get(k).title})" for k in names())
