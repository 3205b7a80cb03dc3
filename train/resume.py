"""Resuming an interrupted run: what it must share with the run it continues, the state saved each epoch, and
the mark that says it finished."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

import keras

from train.arch import model_file
from train.cache import content_sha256
from train.config import TrainConfig
from train.ferplus import ferplus_path_for

STATE_DIR = ".train"  # checkpoints and resume state while training, not artifacts
# What does not change what is learned: where things are read from or go, the cache, verbosity, resume itself.
# Every other setting a resumed run must share with the run it continues (a new setting is compared unless
# named here); the data, votes, teachers and starting weights by their content (FILE_SETTINGS).
NOT_LEARNED = ("data", "out_dir", "cache_dir", "resume", "verbose", "allow_shipped_output")
FILE_SETTINGS = ("data", "ferplus", "teacher", "init_from")


def run_identity(config: TrainConfig) -> tuple[dict, dict]:
    """(what a resumed run must share with the run it continues, the files as given): every learned setting,
    and the data, the FER+ votes trained on, the teachers and the starting weights by their sha256."""
    settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in NOT_LEARNED}
    votes_used = config.votes_needed()
    given = {
        "data": [config.data],
        "ferplus": [config.ferplus or str(ferplus_path_for(config.data))] if votes_used else [],
        "teacher": [path.strip() for path in config.teacher.split(",") if path.strip()],
        "init_from": [config.init_from] if config.init_from else [],
    }
    for name, paths in given.items():
        settings[name] = [content_sha256(path) if Path(path).exists() else f"missing: {path}" for path in paths]
    return settings, given


def resume_state(state_dir: Path, settings: dict, given: dict) -> dict:
    """The interrupted run's state when this run may continue it; else ValueError saying why: it finished,
    or a setting, the data or another input file differs from what it started with."""
    state_file = state_dir / "state.json"
    if not state_file.exists():
        raise FileNotFoundError(f"{state_file}: nothing to resume from; run without --resume first")
    state = json.loads(state_file.read_text())
    out_dir = state_dir.parent
    model = model_file(state.get("settings", {}).get("arch", "mini_xception"))
    finished = state.get("finished") or (state["next_epoch"] >= state.get("settings", {}).get("epochs", math.inf) and "all its epochs")
    if finished:
        raise ValueError(
            f"{out_dir} finished ({finished}, best PublicTest {state.get('settings', {}).get('select_on', 'accuracy').replace('_', ' ')} {state['best_val_accuracy']:.4f}): nothing to resume. "
            f"Its model is {out_dir / model}; to train on from it, start a new run with --init-from {out_dir / model} "
            "and another --out-dir"
        )
    before, before_given = state.get("settings", {}), state.get("given", {})
    changed = []
    for name, value in settings.items():
        if name not in before or before[name] == value:
            continue
        if name in FILE_SETTINGS and before[name] and value:
            changed.append(f"{name}: other content ({', '.join(before_given.get(name, ['?']))} -> {', '.join(given[name])})")
        elif name in FILE_SETTINGS:
            changed.append(f"{name}: {', '.join(before_given.get(name, []))!r} -> {', '.join(given[name])!r}")
        else:
            changed.append(f"{name} {before[name]!r} -> {value!r}")
    if changed:
        raise ValueError(
            f"--resume continues the same run; changed since it started: {'; '.join(changed)}. "
            f"Resume with the run's own settings, or start a new run in another --out-dir"
        )
    unchecked = [name for name in settings if name not in before]
    if unchecked:  # a state written before these were recorded
        print(f"warning: {state_file} predates recording {', '.join(unchecked)}; those are not compared")
    return state


class SaveResumeState(keras.callbacks.Callback):
    """Each epoch (after the best checkpoint is saved), the model with its optimizer state, the best
    PublicTest accuracy so far and the run's settings, so an interrupted run can resume."""

    def __init__(self, state_dir: Path, best_so_far: float, settings: dict, given: dict, monitor: str = "val_accuracy"):
        super().__init__()
        self.state_dir, self.best, self.settings, self.given, self.monitor = state_dir, best_so_far, settings, given, monitor

    def on_epoch_end(self, epoch, logs=None):
        self.best = max(self.best, float((logs or {}).get(self.monitor, -1.0)))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        partial = self.state_dir / "last.partial.keras"
        self.model.save(partial)
        partial.replace(self.state_dir / "last.keras")
        write_state(self.state_dir, {"next_epoch": epoch + 1, "best_val_accuracy": self.best, "settings": self.settings,
                                     "given": self.given})


def write_state(state_dir: Path, state: dict) -> None:
    partial_state = state_dir / "state.partial.json"
    partial_state.write_text(json.dumps(state))
    partial_state.replace(state_dir / "state.json")


def mark_finished(state_dir: Path, config: TrainConfig) -> None:
    """Once the model and report are written: a later --resume says the run is done instead of training on."""
    state = json.loads((state_dir / "state.json").read_text())
    state["finished"] = f"all {config.epochs} epochs" if state["next_epoch"] >= config.epochs else f"early stopping, patience {config.patience}"
    write_state(state_dir, state)
