"""Profile reference pages generated from ``hw_profiles/*.toml``: every number with its source.

mkdocs runs this file as a hook (``hooks:`` in mkdocs.yml) and serves the pages without writing them
into ``docs/``; ``python docs/gen_profiles.py OUT_DIR`` writes the same Markdown files to a folder.
Generated, so the reference cannot drift from the data the compiler reads.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from neurodeploy.hw_profiles import Profile, available, get

FOLDER = "reference/profiles"
SECTIONS = {
    "numerics": "Number formats and timing the core model uses.",
    "limits": "Per-core and per-chip resources the placer and the design rules check.",
    "energy": "Costs used for energy estimates in compile reports.",
    "mismatch": "Device-to-device variation (used by variability studies, planned).",
}


def _cell(value: Any) -> str:
    """A Markdown table cell: pipes escaped, lists and tables shown as written in TOML."""
    if isinstance(value, dict):
        text = ", ".join(f"{k} = {_cell(v)}" for k, v in value.items())
    elif isinstance(value, list):
        text = str(value).replace("'", '"')
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ") or " "


def render(profile: Profile) -> str:
    """One page: header facts, one table per section, then the full references."""
    lines = [
        f"# {profile.name}: {profile.title}",
        "",
        f"Generated from `hw_profiles/{profile.name}.toml`. Use it as `--profile {profile.name}` on the command "
        f'line or `neurodeploy.compile(graph, "{profile.name}")` in Python.',
        "",
        "| field | value |",
        "|---|---|",
        f"| kind | {profile.kind} |",
        f"| core model | {profile.core_model} |",
        "",
    ]
    unverified = 0
    for section, what in SECTIONS.items():
        values = getattr(profile, section)
        lines += [f"## {section}", "", what, ""]
        if not values:
            lines += ["*This profile sets none.*", ""]
            continue
        lines += ["| field | value | source | verified | note |", "|---|---|---|---|---|"]
        for key, value in values.items():
            cite = profile.citations[f"{section}.{key}"]
            unverified += not cite.verified
            flag = "yes" if cite.verified else "**no**"
            lines.append(
                f"| `{key}` | {_cell(value)} | [{cite.source}](#source-{cite.source}) | {flag} | {_cell(cite.note)} |"
            )
        lines.append("")
    lines += ["## Sources", ""]
    for key, ref in profile.sources.items():
        lines.append(f'- <a id="source-{key}"></a>**{key}**: {ref}')
    lines.append("")
    if unverified:
        lines += [
            f'!!! warning "{unverified} unverified numbers"',
            "    Figures marked **no** are quoted from secondary material and not checked against a "
            "primary source. Treat results that depend on them as estimates.",
            "",
        ]
    return "\n".join(lines)


def index(profiles: list[Profile]) -> str:
    lines = [
        "# Hardware profiles",
        "",
        "Every chip model is a TOML file; every number in it names its source. These pages are generated "
        "from the files that ship with neurodeploy. Check your own file with "
        "`neurodeploy profiles validate my_chip.toml`, and see [Profiles](../../concepts/profiles.md) for "
        "the format.",
        "",
        "| name | title | kind | core model | neurons per core | weight bits |",
        "|---|---|---|---|---|---|",
    ]
    for p in profiles:
        neurons = p.limits.get("neurons_per_core", "unlimited")
        bits = p.numerics.get("weight_bits", "float")
        lines.append(f"| [{p.name}]({p.name}.md) | {_cell(p.title)} | {p.kind} | {p.core_model} | {neurons} | {bits} |")
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Path inside the docs -> Markdown, for the index and each shipped profile."""
    profiles = [get(name) for name in available()]
    out = {f"{FOLDER}/index.md": index(profiles)}
    out.update({f"{FOLDER}/{p.name}.md": render(p) for p in profiles})
    return out


def _fill_nav(items: list, entries: list) -> bool:
    """Replace the children of the nav section holding the profile index with the index and every profile."""
    for item in items:
        if isinstance(item, dict):
            for title, value in item.items():
                if isinstance(value, list):
                    if f"{FOLDER}/index.md" in value:
                        item[title] = entries
                        return True
                    if _fill_nav(value, entries):
                        return True
    return False


def on_config(config: Any) -> Any:
    """mkdocs hook: list one nav entry per shipped profile, so a new TOML file needs no mkdocs.yml edit."""
    entries: list = [f"{FOLDER}/index.md"] + [{name: f"{FOLDER}/{name}.md"} for name in available()]
    if config.get("nav"):
        _fill_nav(config["nav"], entries)
    return config


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated pages to the site."""
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "site-profiles")
    for rel, text in pages().items():
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(out)
