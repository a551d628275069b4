"""Redis state: key layout, the batch commit, and the window reader."""
