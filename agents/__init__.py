"""The processing side of kefu-pulse: pure core, Redis state, stream agents, exposure."""

# Which core runs is decided before any module of this package loads: the store's compiled
# modules (keys, writes) imported first would otherwise load from source (agents/core/compiled.py).
from agents.core.compiled import activate

activate()
