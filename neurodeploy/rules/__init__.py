"""Credit-assignment rules as network motifs plus engine rules (see ``compiler.learning``).

``CHIP_RULES`` are the rules whose every signal runs in the compiled network; the others still run
their learning signals on the host (``neurodeploy.learning``) and say so in their provenance.
"""

from __future__ import annotations

from neurodeploy.rules.alignment import CHIP_RULES, RuleMotif, motif

__all__ = ["CHIP_RULES", "RuleMotif", "motif"]
