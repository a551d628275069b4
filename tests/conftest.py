from __future__ import annotations

from hypothesis import HealthCheck, settings

# Timing belongs to benchmarks, not tests: no per-example deadline.
settings.register_profile("kefu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kefu")
