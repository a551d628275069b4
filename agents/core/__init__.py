"""Pure domain logic: no Kafka, no Redis, no clock. Timestamps are event-time milliseconds."""

from agents.core.compiled import activate

activate()  # before any hot module loads: the compiled build if it is fresh (compiled.py says how)
