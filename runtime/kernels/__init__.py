"""Compiled CPU kernels of the runtime (built on the machine that runs them)."""
