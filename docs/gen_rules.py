"""The rule reference, generated from the rules themselves: for every rule its paper variant's equations
and options, and every way its chip variant departs from them.

mkdocs runs this file as a hook (``hooks:`` in mkdocs.yml); generated, so the page says exactly what the
code runs and what each result's ``differences_from_paper`` lists.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

PAGE = "reference/rules.md"


def render() -> str:
    from neurodeploy.rules.alignment import RULES
    from neurodeploy.rules.paper import PAPER_RULES, PaperConfig, trainer_class

    lines = [
        "# Rules: paper and chip variants",
        "",
        'Generated from the code. `variant="paper"` runs a rule\'s published equations in float64 on the '
        '`ideal` profile (`neurodeploy.rules.paper`); `variant="chip"` (the default) runs its adaptation on '
        "the profile's learning engine. Each chip result lists the differences below under "
        "`differences_from_paper`; a paper result lists none.",
        "",
        "Options every paper variant takes (`neurodeploy learn --variant paper`, or `learn(..., "
        'variant="paper", **options)`):',
        "",
        "| option | default |",
        "|---|---|",
    ]
    lines += [f"| `{f.name}` | `{f.default}` |" for f in fields(PaperConfig) if f.name not in ("rule",)]
    lines.append("")
    for name, mot in RULES.items():
        lines += [f"## {name}", "", f"{mot.summary}.", ""]
        if name in PAPER_RULES:
            cls = trainer_class(name)
            lines += ["**Paper variant.** " + (cls.__doc__ or "").strip().splitlines()[0], ""]
            eq = cls.EQUATIONS
            eq_text = "; ".join(f"{k}: {v}" for k, v in eq.items()) if isinstance(eq, dict) else str(eq)
            lines += [f"Equations: {eq_text}", ""]
            if hasattr(cls, "Options"):
                lines += ["| option | default |", "|---|---|"]
                lines += [f"| `{f.name}` | `{f.default}` |" for f in fields(cls.Options)]
                lines.append("")
        lines += ["**Chip variant: differences from the paper.**", ""]
        lines += [f"- {d}" for d in mot.chip_differences] or ["- none"]
        lines.append("")
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated page to the site."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
