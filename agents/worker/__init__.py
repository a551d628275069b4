"""The Faust side of the worker: sinks, HTTP views, timers and rebalance hooks."""
