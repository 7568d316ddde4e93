"""sqlite-utils without pandas: import this before sqlite-utils.

sqlite-utils imports pandas whenever it is installed (raer's evals extra brings it) only to
map `pandas.Timestamp` to a column type, which raer never writes. That import costs ~70 MB
of memory and a few tenths of a second in every process that opens a store: each `--workers`
process and each Ray task. So sqlite-utils is imported here with pandas hidden; pandas itself
stays importable afterwards for the commands that use it.
"""

from __future__ import annotations

import sys

if "sqlite_utils" not in sys.modules and "pandas" not in sys.modules:
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` fails
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]
