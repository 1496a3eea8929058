"""Placeholder for `make run`; replaced by the seed scenario."""

print("pumpguard: scenario not built yet")
