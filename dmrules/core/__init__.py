"""The ground floor (issue 13): plumbing shared by every package, below the CLI and the science.

- :mod:`dmrules.core.results`: atomic writes, provenance, parquet tables with metadata, safe reads
  (``dmrules.results`` is the same module, kept for the existing imports);
- :mod:`dmrules.core.locks`: one writer per output (``dmrules.locks`` is the same module);
- :mod:`dmrules.core.streams`: named random streams, ``derive(seed, "purpose", ...)``;
- :mod:`dmrules.core.loop`: the resumable loop skeleton (checkpoint, resume, stats trimming).

Imports nothing of ``theory``, ``sims``, ``fullscale``, ``reports`` or the CLI (tested), and only the
standard library at module level (numpy / torch inside the functions that return their generators).
"""
