"""pumpguard's pytest plugin: system tests against the emulator, or the same tests
against boards (hardware in the loop), on this machine or in a labgrid farm
(``farm.py``). pytest loads it by itself wherever pumpguard is installed (the
``pytest11`` entry point ``pumpguard``; ``-p no:pumpguard`` turns it off).

    pytest                                                  # fresh emulators
    pytest --pump-port /dev/ttyUSB0 --pump-board pico       # one board
    pytest -n 2 --pump-port /dev/ttyUSB0 --pump-port /dev/ttyUSB1 --pump-board pico

``plugin.py`` holds the options and hooks, ``fixtures.py`` the fixtures, ``board.py``
what the plugin asks a board (the HELLO check, its identity, its event log, the clean-up
after a test). ``pytest --help`` lists the options under "pumpguard".
"""

# Per-attempt answer timeout of the fixtures' connections (3 attempts): generous, so a
# loaded CI machine (xdist workers, emulators, Node, two busy loops beside them) never
# turns a slow answer into a failure; a board or an emulator answers in milliseconds,
# so the margin costs nothing unless something is wrong. (2 s was not enough: under
# load a WebAssembly emulator's AUTH went unanswered for 6 s, its 3 attempts.) A test
# that waits out silence on purpose sets its own short timeout for that request.
ANSWER_TIMEOUT_S = 10.0
