"""Every figure on a page from the file that measured it: README.md and docs/*.md hold markers that name
their source, and this script writes the value between them. tests/scripts/test_make_figures.py fails
when a page disagrees with its source.

    .venv/bin/python scripts/make_figures.py                 # rewrite the figures in every page
    .venv/bin/python scripts/make_figures.py --check         # list the stale ones, exit 1 if any
    .venv/bin/python scripts/make_figures.py --record-demo   # run the demo, keep its records in docs/bench/

A figure (invisible in the rendered page):

    <!-- fig SOURCE ; PATH ; FORMAT -->11.9<!-- /fig -->

(`;`, not `|`: a Markdown table would split its cell at a `|`, comment or not.)

SOURCE is a JSON file under the repository, or a glob (`docs/bench/*_pipeline_*.json`): the newest
file, by name, in which PATH resolves, so a new benchmark's JSON flows in by itself. PATH walks the JSON:
`.key`, `[3]` (an index) or `[clip=sample & setting*=(default)]` (the first list item whose values are
equal to (`=`), start with (`^=`) or contain (`*=`) those).
FORMAT is a Python format spec (`.1f`, `.2%`, `,`), or `date` for a 20261201T101334Z stamp.

A block (the lines of a code fence right after the marker):

    <!-- fig-block demo-summary docs/bench/demo_events.jsonl -->

`demo-summary` is what `make demo` prints at its end for the stop record in that file, `demo-events` the
file's lines.
"""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/*.md"]
FIGURE = re.compile(r"<!-- fig (?P<spec>[^>]*?) -->(?P<value>.*?)<!-- /fig -->")
BLOCK = re.compile(r"(?P<marker><!-- fig-block (?P<kind>[\w-]+) (?P<source>\S+) -->\n```\w*\n)(?P<body>.*?)(?P<end>```)", re.S)
STEP = re.compile(r"\.?(?P<key>[A-Za-z_][\w-]*)|\[(?P<inside>[^\]]+)\]")
DEMO_EVENTS = "docs/bench/demo_events.jsonl"


def walk(document, path: str):
    """The value at PATH in a JSON document; KeyError when it is not there."""
    value, at = document, 0
    while at < len(path):
        step = STEP.match(path, at)
        if step is None:
            raise KeyError(f"cannot read {path!r} at {path[at:]!r}")
        at = step.end()
        if step["key"] is not None:
            value = value[step["key"]]
        elif step["inside"].lstrip("-").isdigit():
            value = value[int(step["inside"])]
        else:
            value = next(item for item in value if isinstance(item, dict) and matches(item, step["inside"]))
    return value


def matches(item: dict, tests: str) -> bool:
    """Every one of `key=value` (equal), `key^=value` (starts with), `key*=value` (contains), joined by
    ` & `, holds for the item's values as text."""
    for test in tests.split(" & "):
        key, op, wanted = re.fullmatch(r"([\w-]+)\s*([\^*]?=)\s*(.*)", test.strip()).groups()
        text = str(item.get(key))
        if not (text == wanted if op == "=" else text.startswith(wanted) if op == "^=" else wanted in text):
            return False
    return True


def render(value, form: str) -> str:
    if form == "date":
        stamp = str(value)
        return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}"
    return format(value, form)


def sources(pattern: str, root: Path) -> list[Path]:
    """The files a SOURCE names, newest first: by the time stamp that ends a benchmark's name
    (BOARD_KIND_20261201T101334Z.json), whatever the board."""
    return sorted((Path(name) for name in glob.glob(str(root / pattern))), key=lambda p: p.stem.rsplit("_", 1)[-1], reverse=True)


def figure(spec: str, root: Path = ROOT) -> str:
    """What a figure's marker says its value is; ValueError naming the marker when nothing resolves it."""
    parts = [part.strip() for part in spec.split(";")]
    if len(parts) != 3:
        raise ValueError(f"figure {spec!r}: expected SOURCE ; PATH ; FORMAT")
    pattern, path, form = parts
    for source in sources(pattern, root):
        try:
            return render(walk(json.loads(source.read_text()), path), form)
        except (KeyError, IndexError, StopIteration, TypeError):
            continue
    raise ValueError(f"figure {spec!r}: no file matching {pattern} has {path}")


def block(kind: str, source: str, root: Path = ROOT) -> str:
    lines = (root / source).read_text().splitlines()
    if kind == "demo-events":
        return "\n".join(lines) + "\n"
    if kind == "demo-summary":
        sys.path.insert(0, str(root))
        from edge.cli import format_outputs, format_summary
        from edge.config import RunConfig

        stop = json.loads(lines[-1])
        return format_summary(stop) + format_outputs(RunConfig(save_video="out/demo.mp4", log="out/demo.jsonl")) + "\n"
    raise ValueError(f"fig-block {kind!r}: expected demo-summary or demo-events")


def refresh(text: str, root: Path = ROOT) -> str:
    """The page with every figure and block rewritten from its source."""
    text = FIGURE.sub(lambda m: f"<!-- fig {m['spec']} -->{figure(m['spec'], root)}<!-- /fig -->", text)
    return BLOCK.sub(lambda m: m["marker"] + block(m["kind"], m["source"], root) + m["end"], text)


def stale(text: str, root: Path = ROOT) -> list[str]:
    """'spec: page says X, source says Y' for each figure or block that disagrees."""
    found = [f"{m['spec']}: the page says {m['value']!r}, the source {figure(m['spec'], root)!r}"
             for m in FIGURE.finditer(text) if m["value"] != figure(m["spec"], root)]
    found += [f"fig-block {m['kind']} {m['source']}: the page's block differs"
              for m in BLOCK.finditer(text) if m["body"] != block(m["kind"], m["source"], root)]
    return found


def pages(root: Path = ROOT) -> list[Path]:
    return [path for pattern in PAGES for path in sorted(root.glob(pattern))]


def record_demo(root: Path = ROOT) -> None:
    """Run what `make demo` runs and keep its first track's new and end records and its stop record."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "demo.jsonl"
        subprocess.run([sys.executable, "-m", "edge", "run", "--source", "sample", "--save-video", str(Path(folder) / "demo.mp4"),
                        "--log", str(log), "--emoji"], cwd=root, check=True)
        records = [json.loads(line) for line in log.read_text().splitlines()]
    first = next(r for r in records if r["event"] == "new")
    end = next(r for r in records if r["event"] == "end")
    kept = [first, end, records[-1]]
    (root / DEMO_EVENTS).write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept))


def main(
    check: bool = typer.Option(False, "--check", help="list the figures that disagree with their source; exit 1 if any"),
    record_demo_run: bool = typer.Option(False, "--record-demo", help=f"run the demo first and keep its records in {DEMO_EVENTS}"),
) -> None:
    if record_demo_run:
        record_demo()
    problems = []
    for page in pages():
        text = page.read_text()
        if check:
            problems += [f"{page.relative_to(ROOT)}: {problem}" for problem in stale(text)]
        elif (new := refresh(text)) != text:
            page.write_text(new)
            typer.echo(f"updated {page.relative_to(ROOT)}")
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
