"""Saying where something failed without saying what it held: logs name the error class and the line of our
code it came from, never its message or a traceback (both can quote a patient's words or a query's values)."""

from __future__ import annotations

import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def where(error: BaseException) -> str:
    """The innermost frame of this project's code the error passed through, as `path:line in function`."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if _ours(frame.filename)]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "unknown"
    try:
        path = Path(frame.filename).resolve().relative_to(ROOT)
    except ValueError:
        path = Path(frame.filename).name
    return f"{path}:{frame.lineno} in {frame.name}"


def _ours(filename: str) -> bool:
    return filename.startswith(str(ROOT)) and "/.venv" not in filename and "site-packages" not in filename
