"""Thin re-export: results I/O lives on the ground floor, :mod:`dmrules.core.results` (issue 13).

``dmrules.results`` *is* that module (the same object in ``sys.modules``), so the many existing
``from dmrules import results as R`` imports, and tests that patch ``dmrules.results.X``, keep
working unchanged. New code may import either name.
"""

import sys

from dmrules.core import results as _results

sys.modules[__name__] = _results
