"""Generated files on disk: written only when they changed, compared for `build --check`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def differing(directory: Path, files: Mapping[str, str]) -> list[str]:
    """Names of `files` missing from `directory` or holding other text."""
    return [
        name
        for name, text in files.items()
        if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
    ]


def write_changed(directory: Path, files: Mapping[str, str]) -> list[Path]:
    """Write the files of `files` that differ; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in differing(directory, files):
        path = directory / name
        path.write_text(files[name], encoding="utf-8")
        written.append(path)
    return written
