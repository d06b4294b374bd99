"""The C accelerator (``_leaves.c``), or None: not built (no C compiler at install), or turned off
with ``CERTLEDGER_PURE_PYTHON=1``. Its functions answer only the plain case of a hot path and return
``None`` (or ``False``) for anything else; the pure-Python code they stand beside is the reference,
decides every other case and names every failure (tests/verifier/test_leaves_accelerator.py)."""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["module"]

module: ModuleType | None = None
if os.environ.get("CERTLEDGER_PURE_PYTHON", "") in ("", "0"):
    try:
        from verifier._internal import _leaves as module
    except ImportError:  # no compiled extension: the pure-Python path alone
        pass
