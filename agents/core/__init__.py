"""Pure domain logic: no Kafka, no Redis, no clock. Timestamps are event-time milliseconds."""
