"""Testing pumpguard boards: the pytest plugin and the labgrid board farm."""
