"""Thin re-export: output locks live on the ground floor, :mod:`dmrules.core.locks` (issue 13).

``dmrules.locks`` *is* that module (the same object in ``sys.modules``).
"""

import sys

from dmrules.core import locks as _locks

sys.modules[__name__] = _locks
