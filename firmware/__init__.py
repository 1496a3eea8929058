# The pumpguard firmware: the safety core, its shell and the composition root
# (main.py). VERSION is the one place the version is written: the device reports it
# in HELLO_R ("pumpguard " + VERSION) and the host package takes it from here.
VERSION = "0.1.0"
