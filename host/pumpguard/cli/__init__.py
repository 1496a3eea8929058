"""The ``pumpguard`` command line: ``main.py`` parses and dispatches (``main()``, the
console script), ``commands.py`` holds each command's parser and handler (the layout
of mpremote's CLI)."""
