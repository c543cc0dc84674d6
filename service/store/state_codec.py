"""JSON form of a patient's state (`PatientState`, `RegionalState`): plain dicts and lists, ISO 8601 times."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pathways.lines.patient import Evidence as RegionEvidence
from pathways.lines.patient import Lane, RegionalState
from pathways.model import Priority, SourceRef
from pathways.pathway import State
from pathways.state import (
    FIRST_EPISODE,
    WHOLE,
    Checkpoint,
    DiagnosisEntry,
    Entry,
    Fired,
    MeasureState,
    PatientState,
    Value,
    Watch,
)

FORMAT = 2
"""Bumped when the JSON shape changes; an unknown shape is refused rather than misread."""

READABLE_FORMATS = (1, 2)
"""Format 1 predates episodes: one episode, `1`, no relapse watch; it reads as such."""


def _ref(source: SourceRef) -> list[str | None]:
    return [source.resource_type, source.resource_id, source.version_id]


def _unref(data: Any) -> SourceRef:
    return SourceRef(data[0], data[1], data[2])


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _untime(text: Any) -> datetime:
    return datetime.fromisoformat(text)


def _maybe_untime(text: Any) -> datetime | None:
    return None if text is None else _untime(text)


def _value(value: Value | None) -> list[Any] | None:
    return None if value is None else [_time(value.at), value.number, _ref(value.source)]


def _unvalue(data: Any) -> Value | None:
    return None if data is None else Value(_untime(data[0]), float(data[1]), _unref(data[2]))


def _entry(entry: Entry) -> list[Any]:
    # The matched code is a fourth element, and a radiograph's conclusion a fifth, only when known:
    # states stored without them still read, and most entries stay three elements long.
    code = list(entry.code) if entry.code else None
    tail = [code, entry.detail] if entry.detail is not None else [code] if code else []
    return [_time(entry.at), entry.name, _ref(entry.source), *tail]


def _unentry(data: Any) -> Entry:
    code = (data[3][0], data[3][1]) if len(data) > 3 and data[3] else None
    detail = data[4] if len(data) > 4 else None
    return Entry(_untime(data[0]), data[1], _unref(data[2]), code, detail)


def _diagnosis(entry: DiagnosisEntry) -> dict[str, Any]:
    return {
        "at": _time(entry.at),
        "groups": list(entry.groups),
        "triggers": entry.triggers,
        "region": entry.region,
        "source": _ref(entry.source),
        "known_at": _time(entry.known_at),
    }


def _undiagnosis(data: Any) -> DiagnosisEntry:
    return DiagnosisEntry(
        _untime(data["at"]),
        tuple(data["groups"]),
        data["triggers"],
        data["region"],
        _unref(data["source"]),
        _untime(data["known_at"]),
    )


def _fired(fired: Fired) -> dict[str, Any]:
    return {
        "key": fired.key,
        "episode": fired.episode,
        "step": fired.step,
        "occurrence": fired.occurrence,
        "at": _time(fired.at),
        "priority": fired.priority.value,
        "severity": fired.severity,
        "reasons": [_ref(r) for r in fired.reasons],
        "retracted": list(fired.retracted),
        "open": fired.open,
        "withdrawn": fired.withdrawn,
        "items": list(fired.items),
    }


def _unfired(data: Any) -> Fired:
    return Fired(
        key=data["key"],
        episode=data.get("episode", FIRST_EPISODE),
        step=data["step"],
        occurrence=data["occurrence"],
        at=_untime(data["at"]),
        priority=Priority(data["priority"]),
        severity=data["severity"],
        reasons=tuple(_unref(r) for r in data["reasons"]),
        retracted=tuple(data["retracted"]),
        open=data["open"],
        withdrawn=data["withdrawn"],
        items=tuple(data.get("items", ())),  # states stored before items were kept have none
    )


def state_to_json(state: PatientState) -> dict[str, object]:
    """The JSON-safe dict of a state."""
    checkpoint = state.checkpoint
    return {
        "format": FORMAT,
        "episode": state.episode,
        "visits": [_entry(v) for v in state.visits],
        "measures": [[m.measure, _value(m.baseline), _value(m.latest)] for m in state.measures],
        "adherence": _value(state.adherence),
        "barriers": [_entry(e) for e in state.barriers],
        "findings": [_entry(e) for e in state.findings],
        "contraindications": [_entry(e) for e in state.contraindications],
        "diagnoses": [_diagnosis(d) for d in state.diagnoses],
        "interventions": [_entry(e) for e in state.interventions],
        "fired": [_fired(f) for f in state.fired],
        "red_flag_since": [[severity, _time(at)] for severity, at in state.red_flag_since],
        "checkpoint": None if checkpoint is None else [_time(checkpoint.due_at), checkpoint.set_by, checkpoint.held],
        "responded": state.responded,
        "horizon": _time(state.horizon),
        "episode_start": _time(state.episode_start),
        "watch": None if state.watch is None else _watch(state.watch),
        "closed_at": _time(state.closed_at),
        "renews_at": _time(state.renews_at),
        "birth_date": None if state.birth_date is None else state.birth_date.isoformat(),
        "role": state.role,
        "surgical_at": _time(state.surgical_at),
        "consulted": list(state.consulted),
        "open_lines": list(state.open_lines),
    }


def _watch(watch: Watch) -> dict[str, Any]:
    return {"started": _time(watch.started), "best": [[measure, _value(v)] for measure, v in watch.best]}


def _unwatch(data: Any) -> Watch | None:
    if data is None:
        return None
    best = tuple((measure, value) for measure, raw in data["best"] if (value := _unvalue(raw)) is not None)
    return Watch(_untime(data["started"]), best)


def state_from_json(data: dict[str, Any]) -> PatientState:
    """The state a `state_to_json` dict describes."""
    if data.get("format") not in READABLE_FORMATS:
        raise ValueError(f"unknown patient state format {data.get('format')!r}; expected {FORMAT}")
    checkpoint = data["checkpoint"]
    return PatientState(
        episode=data["episode"],
        visits=tuple(_unentry(v) for v in data["visits"]),
        measures=tuple(MeasureState(m[0], _unvalue(m[1]), _unvalue(m[2])) for m in data["measures"]),
        adherence=_unvalue(data["adherence"]),
        barriers=tuple(_unentry(e) for e in data["barriers"]),
        findings=tuple(_unentry(e) for e in data["findings"]),
        contraindications=tuple(_unentry(e) for e in data["contraindications"]),
        diagnoses=tuple(_undiagnosis(d) for d in data["diagnoses"]),
        interventions=tuple(_unentry(e) for e in data["interventions"]),
        fired=tuple(_unfired(f) for f in data["fired"]),
        red_flag_since=tuple((s, _untime(at)) for s, at in data["red_flag_since"]),
        checkpoint=None if checkpoint is None else Checkpoint(_untime(checkpoint[0]), checkpoint[1], checkpoint[2]),
        responded=data["responded"],
        horizon=_maybe_untime(data["horizon"]),
        episode_start=_maybe_untime(data.get("episode_start")),
        watch=_unwatch(data.get("watch")),
        closed_at=_maybe_untime(data.get("closed_at")),
        renews_at=_maybe_untime(data.get("renews_at")),
        birth_date=None if data.get("birth_date") is None else date.fromisoformat(data["birth_date"]),
        role=data.get("role", WHOLE),
        surgical_at=_maybe_untime(data.get("surgical_at")),  # states stored before 2.0 have neither
        consulted=tuple(data.get("consulted", ())),
        open_lines=tuple(data.get("open_lines", ())),
    )


def regional_to_json(state: RegionalState) -> dict[str, object]:
    """The JSON-safe dict of a patient's state on a pathway with episode lines: each lane's state in full."""
    return {
        "format": FORMAT,
        "lanes": [
            {"line": lane.line, "state": state_to_json(lane.state), "ended": lane.ended, "unused": list(lane.unused)}
            for lane in state.lanes
        ],
        "flags": None if state.flags is None else state_to_json(state.flags),
        "opened": state.opened,
        "evidence": [[e.line, _time(e.at), e.reference] for e in state.evidence],
        "conditions": [[reference, list(lines)] for reference, lines in state.conditions],
        "birth_date": None if state.birth_date is None else state.birth_date.isoformat(),
    }


def regional_from_json(data: dict[str, Any]) -> RegionalState:
    """The state a `regional_to_json` dict describes."""
    if data.get("format") not in READABLE_FORMATS:
        raise ValueError(f"unknown patient state format {data.get('format')!r}; expected {FORMAT}")
    return RegionalState(
        lanes=tuple(
            Lane(lane["line"], state_from_json(lane["state"]), lane["ended"], tuple(lane["unused"]))
            for lane in data["lanes"]
        ),
        flags=None if data["flags"] is None else state_from_json(data["flags"]),
        opened=data["opened"],
        evidence=tuple(RegionEvidence(line, _untime(at), reference) for line, at, reference in data["evidence"]),
        conditions=tuple((reference, tuple(lines)) for reference, lines in data["conditions"]),
        birth_date=None if data["birth_date"] is None else date.fromisoformat(data["birth_date"]),
    )


def pathway_state_to_json(state: State) -> dict[str, object]:
    """Either kind of state (`pathways.pathway.State`) as JSON; the shape says which it is."""
    return regional_to_json(state) if isinstance(state, RegionalState) else state_to_json(state)


def pathway_state_from_json(data: dict[str, Any]) -> State:
    """A state stored by `pathway_state_to_json`: lanes for a pathway with episode lines, else one state."""
    return regional_from_json(data) if "lanes" in data else state_from_json(data)
