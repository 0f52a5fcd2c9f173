"""Credit-assignment rules as network motifs plus engine rules (see ``compiler.learning``).

``CHIP_RULES`` are the rules that run on the compiled network; each result's ``provenance`` says which
signals the chip computes and which the host does. e-prop trains its own recurrent network
(``neurodeploy.learning.eprop``).
"""

from __future__ import annotations

from neurodeploy.rules.alignment import CHIP_RULES, RuleMotif, motif

__all__ = ["CHIP_RULES", "RuleMotif", "motif"]
