"""The README and docs/ stay true: every relative link resolves (anchors included), and every command a
code block shows names a real target, variable, sub-command and flag."""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def prose(page: Path) -> str:
    return FENCE.sub("", page.read_text())  # links inside code blocks are examples, not links


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no {resolved})")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    assert broken == [], f"{page_id(page)}: broken links: {broken}"


def test_every_docs_page_is_linked_from_the_readme_or_another_page():
    linked = {(page.parent / target.partition("#")[0]).resolve() for page in PAGES for target in LINK.findall(prose(page))}
    orphans = [page_id(page) for page in PAGES[1:] if page.resolve() not in linked]
    assert orphans == [], f"pages nobody links to: {orphans}"


def command_lines() -> list[tuple[str, str]]:
    """(page, command) for every line of every sh code block, continuation lines joined."""
    found = []
    for page in PAGES:
        for language, block in FENCE.findall(page.read_text()):
            if language not in ("sh", "bash", "shell", "console"):
                continue
            for line in block.replace("\\\n", " ").splitlines():
                if line.strip():
                    found.append((page_id(page), line.strip()))
    return found


def invocations(prefix: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """(page, words after the prefix) for each documented command line that starts with `prefix`."""
    found = []
    for page, line in command_lines():
        words = shlex.split(line, comments=True)
        words = [w for w in words if not re.match(r"^[A-Z_]+=", w)] if words and re.match(r"^[A-Z_]+=", words[0]) else words
        if tuple(words[: len(prefix)]) == prefix:
            found.append((page, words[len(prefix):]))
    return found


HELP_ENV = {**os.environ, "COLUMNS": "300", "TERM": "dumb", "NO_COLOR": "1"}


@functools.cache
def help_text(module: str, path: tuple[str, ...]) -> str | None:
    result = subprocess.run([sys.executable, "-m", module, *path, "--help"], cwd=ROOT, env=HELP_ENV,
                            capture_output=True, text=True, timeout=120)
    return result.stdout if result.returncode == 0 else None


def command_help(module: str, words: list[str]) -> tuple[tuple[str, ...], str]:
    """The longest run of leading words that is a sub-command path of `python -m module`, and its help."""
    leading = []
    for word in words:
        if word.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        leading.append(word)
    for end in range(len(leading), -1, -1):
        text = help_text(module, tuple(leading[:end]))
        if text is not None and (end == 0 or "Commands" not in text or end == len(leading)):
            return tuple(leading[:end]), text
    raise AssertionError(f"python -m {module} --help fails")


def documented_python_commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for python in ("python", "python3", ".venv/bin/python"):
        for page, words in invocations((python, "-m")):
            found.append((page, words[0], words[1:]))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("module", ["edge", "train", "convert"])
def test_every_documented_python_command_names_real_sub_commands_and_flags(module):
    commands = [(page, words) for page, name, words in documented_python_commands() if name == module]
    assert commands, f"no documented python -m {module} command"
    wrong = []
    for page, words in commands:
        path, text = command_help(module, words)
        helped = set(re.findall(r"--[a-z0-9][a-z0-9-]*", text))
        flags = {word.split("=")[0] for word in words if word.startswith("--")}
        wrong += [f"{page}: python -m {module} {' '.join(path)} has no {f}" for f in sorted(flags - helped - {"--help"})]
        sub_commands = [w for w in words[len(path):] if re.fullmatch(r"[a-z]+", w)]
        if "Commands" in text and sub_commands:
            wrong.append(f"{page}: python -m {module} {' '.join(path)} has no command {sub_commands[0]!r}")
    assert wrong == []


@pytest.mark.slow
def test_every_documented_script_exists_and_takes_its_flags():
    wrong = []
    for page, line in command_lines():
        words = shlex.split(line, comments=True)
        if len(words) < 2 or words[0] not in ("python", "python3", ".venv/bin/python") or not words[1].endswith(".py"):
            continue
        script = ROOT / words[1]
        if not script.is_file():
            wrong.append(f"{page}: {words[1]} does not exist")
            continue
        flags = {word.split("=")[0] for word in words[2:] if word.startswith("--")}
        if flags:
            result = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, env=HELP_ENV,
                                    capture_output=True, text=True, timeout=120)
            wrong += [f"{page}: {words[1]} has no {f}" for f in sorted(flags) if f not in result.stdout]
    assert wrong == []


MAKEFILES = (ROOT / "Makefile", ROOT / "deploy" / "deploy.mk")


def test_every_documented_make_command_is_a_real_target_with_real_variables(tmp_path):
    venv = tmp_path / "venv"  # install markers up to date: make -n shows the target's own commands only
    venv.mkdir()
    for marker in (".edge", ".all"):
        (venv / marker).touch()
    makefile_text = "".join(path.read_text() for path in MAKEFILES)
    wrong = []
    for page, words in invocations(("make",)):
        variables = [w.split("=")[0] for w in words if "=" in w]
        wrong += [f"{page}: make has no variable {v}" for v in variables if f"$({v})" not in makefile_text]
        result = subprocess.run(["make", "-n", "-C", str(ROOT), "--no-print-directory", f"VENV={venv}", f"PY={sys.executable}", *words],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            wrong.append(f"{page}: make -n {' '.join(words)}: {result.stderr.strip()}")
    assert wrong == []
