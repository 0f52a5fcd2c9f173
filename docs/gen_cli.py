"""The command-line reference, generated from the Typer app: every verb, its help, example and options.

mkdocs runs this file as a hook (``hooks:`` in mkdocs.yml); generated so it always matches ``--help``.
"""

from __future__ import annotations

from typing import Any

PAGE = "reference/cli.md"


def _commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
    out = []
    for name, cmd in group.commands.items():
        path = f"{prefix} {name}"
        out.append((path, cmd))
        if hasattr(cmd, "commands"):
            out.extend(_commands(cmd, path))
    return out


def _param_row(p: Any) -> str:
    if p.param_type_name == "argument":
        name = f"`{p.name.upper()}`"
    else:
        name = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
    default = "required" if p.required else ("" if p.default is None or p.default is False else f"`{p.default}`")
    text = (p.help or "").replace("|", "\\|")
    return f"| {name} | {text} | {default} |"


def render() -> str:
    import typer

    from neurodeploy.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# Command line",
        "",
        "Generated from the program itself; `neurodeploy VERB --help` prints the same. Every verb prints one "
        "line `error: what (where). what to do` on stderr and exits with status 2 on bad input, and writes "
        "no partial output file. `--json` prints machine-readable output on stdout; progress bars go to "
        "stderr and only on a terminal.",
        "",
    ]
    for path, cmd in _commands(root, "neurodeploy"):
        help_text = (cmd.help or "").strip()
        summary, _, rest = help_text.partition("\n\n")
        lines += [f"## `{path}`", "", summary, ""]
        for para in rest.split("\n\n"):
            para = para.strip()
            if para.startswith("Example:"):
                lines += ["```bash", para.removeprefix("Example:").strip(), "```", ""]
            elif para:
                lines += [para, ""]
        params = [p for p in cmd.params if p.name != "help"]
        if params:
            lines += ["| argument / option | meaning | default |", "|---|---|---|"]
            lines += [_param_row(p) for p in params]
            lines.append("")
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated page to the site."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
