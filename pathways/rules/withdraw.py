"""Retractions: a decision stands unless every fact it rested on has been retracted."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from pathways.model import Withdrawal
from pathways.rules.red_flags import close
from pathways.rules.run import Run
from pathways.state import Fired


def apply_retractions(run: Run, retracted: Collection[str], restored: Collection[str]) -> None:
    """Mark retracted reasons; withdraw decisions left with none (closing their Tasks)."""
    touched = set(retracted) | set(restored)
    if not any(touched & ({r.reference for r in d.reasons} | set(d.retracted)) for d in run.state.fired):
        return
    fired: list[Fired] = []
    for decision in run.state.fired:
        references = {r.reference for r in decision.reasons}
        marked = (set(decision.retracted) | (references & set(retracted))) - set(restored)
        decision = replace(decision, retracted=tuple(sorted(marked)))
        if not decision.withdrawn and references and references <= marked:
            decision = replace(decision, withdrawn=True, open=False)
            facts = ", ".join(sorted(references))
            run.withdrawals.append(Withdrawal(decision.key, f"every fact it rested on was retracted: {facts}"))
            run.check("withdraw", True, "every reason record has been retracted", decision=decision.key)
            if decision.severity is not None:
                run.state = close(run.state, decision.severity, run.now)
        fired.append(decision)
    run.state = replace(run.state, fired=tuple(fired))
