"""The processing side of kefu-pulse: pure core, Redis state, stream agents, exposure."""
