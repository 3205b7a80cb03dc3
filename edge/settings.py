"""One definition per setting: default, bounds and help live on the config dataclass's field, and the
validation, the command-line options, the TOML file and the docs are all made from it.

    num_threads: int = setting(1, "interpreter threads", low=1, high=64)

Used by edge.config (run), train.fit (training) and convert.run (conversion).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields

SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


@dataclass(frozen=True)
class Setting:
    help: str
    low: float | None = None  # inclusive bounds
    high: float | None = None
    above: float | None = None  # exclusive lower bound
    below: float | None = None  # exclusive upper bound
    choices: tuple[str, ...] | None = None
    zero_means: str | None = None  # 0 (or "") is allowed and means this, whatever the bounds
    panel: str | None = None  # the group it is listed under in --help and the docs (Source, Detection, ...)

    def bounds_text(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)

        def number(value: float) -> str:
            return str(int(value)) if float(value).is_integer() else f"{value:g}"

        if self.low is not None and self.high is not None:
            parts = [f"between {number(self.low)} and {number(self.high)}"]
        else:
            lower = f">= {number(self.low)}" if self.low is not None else f"> {number(self.above)}" if self.above is not None else ""
            upper = f"<= {number(self.high)}" if self.high is not None else f"< {number(self.below)}" if self.below is not None else ""
            parts = [part for part in (lower, upper) if part]
        text = " and ".join(parts)
        if self.zero_means:
            text = f"0 ({self.zero_means}) or {text}" if text else f"0 = {self.zero_means}"
        return text

    def accepts(self, value) -> bool:
        if self.zero_means and value in (0, ""):
            return True
        if self.choices is not None:
            return value in self.choices
        checks = (
            self.low is None or value >= self.low,
            self.high is None or value <= self.high,
            self.above is None or value > self.above,
            self.below is None or value < self.below,
        )
        return all(checks)


def setting(default, help: str, **bounds) -> dataclasses.Field:
    """A dataclass field carrying its Setting (help text and bounds)."""
    return field(default=default, metadata={"setting": Setting(help, **bounds)})


def described(config_class) -> list[tuple[dataclasses.Field, Setting]]:
    return [(f, f.metadata["setting"]) for f in fields(config_class) if "setting" in f.metadata]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def kind_of(f: dataclasses.Field) -> str:
    """'int', 'float', 'bool' or 'str' (optional fields: their inner type)."""
    text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return text.replace(" | None", "").strip()


def check(config, section: str) -> None:
    """Type, finiteness and bounds of every described field; ValueError names the flag, the key and
    the valid range, e.g. `--num-threads (run.num_threads) must be between 1 and 64, got 0`."""
    problems = []
    for f, meta in described(type(config)):
        value = getattr(config, f.name)
        where = f"{flag(f.name)} ({section}.{f.name})"
        if value is None:
            continue
        kind = kind_of(f)
        expected = SCALARS[kind]
        wrong_type = isinstance(value, bool) != (kind == "bool") or not isinstance(value, (int, float) if kind == "float" else expected)
        if wrong_type:
            problems.append(f"{where} must be {kind}, got {value!r}")
        elif kind == "float" and not math.isfinite(value):
            problems.append(f"{where} must be a finite number, got {value!r}")
        elif not meta.accepts(value):
            problems.append(f"{where} must be {meta.bounds_text()}, got {value!r}")
    if problems:
        raise ValueError("; ".join(problems))


def help_text(f: dataclasses.Field, meta: Setting) -> str:
    """The help, its default (unless the help already says it: a `(default: ...)`, or `"" = ...` for an
    empty default) and its valid range."""
    bounds = meta.bounds_text()
    if isinstance(f.default, bool):
        default = "on" if f.default else "off"
    else:
        default = f.default if f.default not in ("", None) else '""' if f.default == "" else "none"
    said = "(default:" in meta.help or (f.default == "" and '"" =' in meta.help)
    extra = "; ".join(([] if said else [f"default: {default}"]) + ([bounds] if bounds else []))
    return f"{meta.help} ({extra})" if extra else meta.help


def cli_options(config_class, exclude: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> Callable:
    """Decorator: adds one typer option per described field (None = not given; `only` some of them) to
    a command and passes the given ones to it as `settings: dict`."""
    import typer

    generated = []
    for f, meta in (row for rows in by_panel(config_class).values() for row in rows):
        if f.name in exclude or (only is not None and f.name not in only):
            continue
        kind = SCALARS[kind_of(f)]
        names = [f"{flag(f.name)}/--no-{f.name.replace('_', '-')}"] if kind is bool else [flag(f.name)]
        # A flag takes no value: a blank metavar keeps typer from printing `<bool>` after it.
        option = typer.Option(
            None, *names, help=help_text(f, meta), show_default=False, rich_help_panel=meta.panel, metavar=" " if kind is bool else None
        )
        generated.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=typing.Optional[kind]))  # noqa: UP045 (typer needs a real type here)

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.name != "settings"]

        @functools.wraps(command)
        def wrapper(**kwargs):
            given = {p.name: kwargs.pop(p.name) for p in generated if kwargs.get(p.name) is not None}
            for p in generated:
                kwargs.pop(p.name, None)
            return command(settings=given, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[*own, *generated])
        hints = typing.get_type_hints(command)
        hints.pop("settings", None)
        wrapper.__annotations__ = {**hints, **{p.name: p.annotation for p in generated}}
        del wrapper.__wrapped__  # typer must see the new signature, not the command's
        return wrapper

    return decorate


def by_panel(config_class) -> dict[str, list[tuple[dataclasses.Field, Setting]]]:
    """The described fields grouped by panel: panels in the order of the class's PANELS, then any other
    in the order its first field comes."""
    groups: dict[str, list] = {name: [] for name in getattr(config_class, "PANELS", ())}
    for f, meta in described(config_class):
        groups.setdefault(meta.panel or "Other", []).append((f, meta))
    return {name: rows for name, rows in groups.items() if rows}


def default_text(f: dataclasses.Field) -> str:
    return repr(f.default).replace("'", '"')


def markdown_table(config_class, section: str) -> str:
    """One table per panel, under a heading each."""
    blocks = []
    for panel, rows in by_panel(config_class).items():
        lines = [f"## {panel}", "", "| key | flag | default | valid | what |", "|---|---|---|---|---|"]
        for f, meta in rows:
            lines.append(f"| `{section}.{f.name}` | `{flag(f.name)}` | `{default_text(f)}` | {meta.bounds_text() or 'any'} | {meta.help} |")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def terminal_tables(config_class, section: str) -> list:
    """The same as `markdown_table`, as rich tables for a terminal: flag, default, valid, what."""
    from rich.table import Table

    tables = []
    for panel, rows in by_panel(config_class).items():
        table = Table(title=panel, title_justify="left", title_style="bold", expand=True, show_lines=False)
        for name, ratio in (("flag", 2), ("default", 1), ("valid", 2), ("what", 5)):
            table.add_column(name, ratio=ratio, overflow="fold")
        for f, meta in rows:
            table.add_row(flag(f.name), default_text(f), meta.bounds_text() or "any", meta.help)
        tables.append(table)
    return tables


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def toml_document(config_class, section: str, header: str, values: dict | None = None, keys: tuple[str, ...] | None = None) -> str:
    """A commented TOML file of the settings: each key's help (and range) above it; `values` overrides
    defaults, `keys` limits which settings are written (others keep their defaults)."""
    values = values or {}
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()] + ["", f"[{section}]"]
    for f, meta in described(config_class):
        if keys is not None and f.name not in keys:
            continue
        bounds = meta.bounds_text()
        lines.append(f"# {meta.help}" + (f" ({bounds})" if bounds else ""))
        value = values.get(f.name, f.default)
        lines.append(f"# {f.name} = true" if value is None else f"{f.name} = {toml_value(value)}")  # TOML has no null: unset
    return "\n".join(lines) + "\n"
