"""The folders the project ships (the tracked models/ and the runtime's edge/assets/): never an output of
training or conversion unless the user says so by name, with --allow-shipped-output."""

from __future__ import annotations

from pathlib import Path

from edge import paths as edge_paths

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ALLOW_FLAG = "--allow-shipped-output"


def shipped_folders() -> tuple[Path, ...]:
    return (PROJECT_ROOT / "models", edge_paths.ASSETS)  # read at call time: tests point ASSETS at a scratch folder


def shipped_folder_of(path: str | Path) -> Path | None:
    """The shipped folder `path` lies in (or is), symlinks and `..` resolved, else None."""
    resolved = Path(path).expanduser().resolve()
    for folder in shipped_folders():
        folder = folder.resolve()
        if resolved == folder or folder in resolved.parents:
            return folder
    return None


def refuse_shipped_output(path: str | Path, flag: str, allowed: bool = False) -> None:
    """ValueError naming `flag` when `path` would write into a shipped folder and `allowed` is not set."""
    folder = shipped_folder_of(path)
    if folder is not None and not allowed:
        raise ValueError(
            f"{flag} {path}: inside the shipped {folder}, whose tracked files it would replace; "
            f"choose another folder (runs/ or out/), or pass {ALLOW_FLAG} to replace them on purpose"
        )
