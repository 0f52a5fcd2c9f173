"""Credit-assignment rules as network motifs plus engine rules (see ``compiler.learning``).

``CHIP_RULES`` are the rules that run on the compiled network; each result's ``provenance`` says which
signals the chip computes and which the host does. e-prop trains its own recurrent network
(``neurodeploy.learning.eprop``). ``LocalRule`` is a user-defined rule (``neurodeploy.rules.custom``).
"""

from __future__ import annotations

from neurodeploy.rules.alignment import CHIP_RULES, RuleMotif, motif
from neurodeploy.rules.custom import LOCAL_SIGNALS, LocalRule, load_rule, local_rule

__all__ = ["CHIP_RULES", "LOCAL_SIGNALS", "LocalRule", "RuleMotif", "load_rule", "local_rule", "motif"]
