"""The ``pumpguard`` command line: ``main.py`` parses and dispatches (``main()``, the
console script), ``options.py`` and ``session.py`` hold what every command shares, and
each other module the parsers and handlers of the commands of one role (the layout of
mpremote's CLI)."""
