"""A service's ``requests:`` block: the request load an inference service receives and how its tasks
serve it (see :mod:`scheduler.sim.requests` for the model). Compiled to the plain dataclasses of
:mod:`scheduler.sim.requests` by :meth:`ServiceRequestsModel.to_config` and ``service_time_config``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from scheduler.scenario.arrivals import BurstyArrivals, DiurnalArrivals, PoissonArrivals
from scheduler.scenario.fields import Duration, Int, Number, _Model
from scheduler.sim.requests import RequestConfig, ServiceTime

MAX_CONCURRENCY = 4096
MAX_QUEUE = 10_000_000
MAX_TOKENS = 1_000_000
Tokens = Annotated[Int, Field(ge=0, le=MAX_TOKENS)]
Seconds = Annotated[Duration, Field(ge=0, le=3600)]


class Envelope(_Model):
    """A diurnal envelope on a replayed trace: each request kept with probability
    ``rate(t) / peak``, the rate a sinusoid from ``trough`` (a fraction of the peak) to 1."""

    trough: Annotated[Number, Field(ge=0, le=1)] = 0.3
    peak_at: Duration = "14h"
    period: Annotated[Duration, Field(gt=0)] = "1d"


class RequestTrace(_Model):
    """Requests replayed from a CSV file (relative to the scenario): one row per request, a time column
    (seconds, or date-times) and input and output token counts. ``speed`` compresses time (2 = twice the
    rate); ``repeat`` plays the trace again back to back until the run ends; ``envelope`` thins it with a
    diurnal curve."""

    type: Literal["trace"]
    file: Annotated[str, Field(min_length=1)]
    time_column: str = "TIMESTAMP"
    input_tokens_column: str = "ContextTokens"
    output_tokens_column: str = "GeneratedTokens"
    speed: Annotated[Number, Field(gt=0, le=1000)] = 1.0
    repeat: bool = False
    envelope: Envelope | None = None


class TokenSizes(_Model):
    """Request sizes of generated arrivals: fixed token counts, or exponentially distributed ones with
    these means (rounded, at least 1)."""

    input_tokens: Tokens = 512
    output_tokens: Annotated[Int, Field(ge=1, le=MAX_TOKENS)] = 128
    distribution: Literal["fixed", "exponential"] = "fixed"


class LLMServiceTime(_Model):
    """An LLM's service time: ``time_to_first_token + per_input_token x input`` to the first token, then
    ``inter_token_latency`` per further output token (figures at the task's batch size)."""

    type: Literal["llm"]
    time_to_first_token: Seconds = 0.05
    per_input_token: Seconds = 0.0004
    inter_token_latency: Seconds = 0.03


class SizeFreeServiceTime(_Model):
    """A service time that does not depend on request size: ``exponential`` or ``fixed`` with mean ``mean``."""

    type: Literal["exponential", "fixed"]
    mean: Annotated[Duration, Field(gt=0, le=86400)]


class ServiceRequestsModel(_Model):
    """``requests:`` on a service: where requests come from and how the service's tasks serve them."""

    arrivals: Annotated[PoissonArrivals | DiurnalArrivals | BurstyArrivals | RequestTrace, Field(discriminator="type")]
    sizes: TokenSizes = TokenSizes()
    service_time: Annotated[LLMServiceTime | SizeFreeServiceTime, Field(discriminator="type")] = LLMServiceTime(
        type="llm")
    concurrency: Int = Field(1, ge=1, le=MAX_CONCURRENCY)
    routing: Literal["least_outstanding_requests", "round_robin"] = "least_outstanding_requests"
    queue_limit: Int | None = Field(None, ge=0, le=MAX_QUEUE)
    timeout: Annotated[Duration, Field(gt=0, le=86400)] | None = None
    busy_cpu_percent: Annotated[Number, Field(gt=0, le=100)] = 100.0
    idle_memory_percent: Annotated[Number, Field(ge=0, le=100)] | None = None
    busy_memory_percent: Annotated[Number, Field(ge=0, le=100)] | None = None
    start: Duration = Field(0, description="requests begin this long after the service starts (traffic is "
                            "sent to a deployed service)")

    @model_validator(mode="after")
    def _sizes_only_when_generated(self) -> ServiceRequestsModel:
        if isinstance(self.arrivals, RequestTrace) and "sizes" in self.model_fields_set:
            raise ValueError("a trace gives each request's size; sizes applies to generated arrivals only")
        return self

    def to_config(self) -> RequestConfig:
        return RequestConfig(concurrency=self.concurrency, routing=self.routing, queue_limit=self.queue_limit,
                             timeout=self.timeout, busy_cpu_percent=self.busy_cpu_percent,
                             idle_memory_percent=self.idle_memory_percent,
                             busy_memory_percent=self.busy_memory_percent)

    def service_time_config(self) -> ServiceTime:
        st = self.service_time
        if isinstance(st, LLMServiceTime):
            return ServiceTime("llm", st.time_to_first_token, st.per_input_token, st.inter_token_latency)
        return ServiceTime(st.type, mean=st.mean)


ServiceRequestsField = Annotated[ServiceRequestsModel | None, Field(
    None, description="requests the service receives and how its tasks serve them (inference services)")]
