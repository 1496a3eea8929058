"""pumpguard host tool: Python API, CLI and emulator for the pumpguard firmware."""
