"""Generated arrival processes a scenario names: Poisson, diurnal (a sinusoidal Poisson rate) and bursty
(a Poisson rate switching between a base and a burst level). RunTask
workloads draw RunTask calls from them and services with ``requests:`` draw requests; how they play out
over time is :mod:`scheduler.sim.workloads`'s (one definition of each process for both)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from scheduler.scenario.fields import Duration, RateOrZero, StepRate, _Model
from scheduler.sim.workloads import diurnal_rate


class PoissonArrivals(_Model):
    """RunTask calls at exponentially distributed gaps with mean 1/rate."""

    type: Literal["poisson"]
    rate: StepRate


def _not_above(value: float, info: ValidationInfo, peak_field: str, shown: str) -> float:
    """A diurnal trough: at most the peak (``peak_field``, validated before it), shown with ``shown``."""
    peak = info.data.get(peak_field)
    if peak is not None and value > peak:
        raise ValueError(f"must not exceed {peak_field} ({shown.format(peak)}), got {shown.format(value)}")
    return value


class DiurnalArrivals(_Model):
    """A Poisson process whose rate follows a sinusoid between ``trough_rate`` and ``peak_rate``,
    peaking at ``peak_at`` (an offset into each period; the run starts at offset 0)."""

    type: Literal["diurnal"]
    peak_rate: StepRate
    trough_rate: RateOrZero
    peak_at: Duration = "14h"
    period: Duration = Field("1d", gt=0)

    @field_validator("trough_rate")
    @classmethod
    def _trough_below_peak(cls, value: float, info: ValidationInfo) -> float:
        return _not_above(value, info, "peak_rate", "{:g}/s")

    def rate_at(self, t: float) -> float:
        """The rate (per second) at ``t`` seconds into the run."""
        return diurnal_rate(t, self.peak_rate, self.trough_rate, self.peak_at, self.period)


class BurstyArrivals(_Model):
    """A Poisson process that switches between ``base_rate`` and ``burst_rate``: bursts last an exponential
    time with mean ``mean_burst``, the quiet spells between them one with mean ``mean_gap`` (a two-state
    Markov-modulated Poisson process); the run starts quiet."""

    type: Literal["bursty"]
    base_rate: RateOrZero
    burst_rate: StepRate
    mean_burst: Annotated[Duration, Field(gt=0)]
    mean_gap: Annotated[Duration, Field(gt=0)]
