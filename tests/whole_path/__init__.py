"""The whole-path simulation: the real BatchProcessor on real Redis, every reader
driven by a simulated clock, every number compared with tests/reference.py.

- `shops.py`: the shops, their rules and the configuration they make.
- `traffic.py`: random traffic built on the edges of metrics.md, as Kafka records.
- `expected.py`: what tests/reference.py says each read path must show at a moment.
- `moments.py`: the moments the read paths are compared at, many of them on edges.
- `reads.py`: the read paths as the worker serves them (floor, trend, reports, gauges, alerts).
- `compare.py`: metric values from counters, and `Finding`s that name where each difference was seen.
- `checks.py`: each read path against the expectation, and the properties that need no reference.
- `simulation.py`: the driven clock that ties them together.
"""
