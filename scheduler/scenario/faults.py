"""The ``faults:`` block of a scenario, derived from the fault kinds (:mod:`scheduler.sim.faults`): one
model per kind, built from its plan dataclass (each field's unit, default and meaning), and the block
that holds them under each kind's key. A targeted kind's entries strike every instance, or those of one
type, at given times or at random with a mean time between failures; Spot interruptions are one object.

Each model is also a module attribute under its plan class's name (``InstanceFailure``,
``SpotInterruptions``, ...), as the kinds' models were when they were written here by hand.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, create_model, model_validator

from scheduler.scenario.fields import Duration, Step, StepRate, _Model
from scheduler.sim.faults import REQUIRED, FaultKind, kinds, params

# each unit of a plan field (scheduler.sim.faults.base.UNITS) as its validated scenario type
_UNITS: dict[str, tuple[Any, dict[str, Any]]] = {
    "instance_type": (str, {}),
    "duration": (Duration, {"ge": 0}),
    "step": (Step, {}),
    "step_rate": (StepRate, {}),
    "times": (list[Duration], {}),
}


class _FaultTarget(_Model):
    """Which instances a fault strikes: every instance, or those of one type; at given times, or at random
    with a mean time between failures per instance."""

    @model_validator(mode="after")
    def _when(self) -> _FaultTarget:
        if self.mtbf is None and not self.at:  # type: ignore[attr-defined]  # fields of the kind's model
            raise ValueError("give mtbf (a mean time between failures) or at (a list of times)")
        return self


def kind_model(kind: FaultKind) -> type[_Model]:
    """The scenario model of one fault kind, from its plan class's fields."""
    fields: dict[str, Any] = {}
    for name, p in params(kind.plan):
        annotation, limits = _UNITS[p.unit]
        if p.default is None:
            annotation = annotation | None
        default = ... if p.default is REQUIRED else p.default
        fields[name] = (annotation, Field(default, description=p.doc, **limits))
    return create_model(kind.plan.__name__, __base__=_FaultTarget if kind.many else _Model, __module__=__name__,
                        __doc__=kind.plan.__doc__, **fields)


MODELS: dict[str, type[_Model]] = {kind.key: kind_model(kind) for kind in kinds()}

# the targeted kinds' lists first, then the one-object kinds (Spot interruptions)
_BLOCK: dict[str, Any] = {
    kind.key: ((list[MODELS[kind.key]], Field([], description=kind.doc)) if kind.many else  # type: ignore[valid-type]
               (MODELS[kind.key] | None, Field(None, description=kind.doc)))
    for kind in sorted(kinds(), key=lambda k: (not k.many, k.order, k.key))}

Faults = create_model("Faults", __base__=_Model, __module__=__name__,
                      __doc__="Faults injected into the run (all optional).", **_BLOCK)

globals().update({model.__name__: model for model in MODELS.values()})
