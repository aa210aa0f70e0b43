"""Small file-system helpers: atomic writes, and where the tool keeps its cache."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old content or the new, never half of it (crash or Ctrl-C alike)."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def cache_dir(environ: dict[str, str]) -> Path:
    """Compiled components and build records: outside every project, so no task can reach them."""
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.path.realpath(base)) / "cargo-task-wasm"
