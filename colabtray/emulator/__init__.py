"""Local emulator of Google sign-in and the Colab backend, whose runtimes are real Jupyter servers.

Run it with ``python -m colabtray.emulator`` (or ``colabtray emulator``); see ``__main__``.
It is written from docs/protocol.md with plain dicts and shares no code with
``colabtray.colab``, so a test of the client against it compares two independent readings.
"""
