"""Who may do what: signed access tokens and the grants they carry.

Pure code (no I/O, the clock passed in). It imports nothing of the package;
the admission gate, the rooms, the engine and the CLI import it.
"""
