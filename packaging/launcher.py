"""The bundled app's entry point (``packaging/colabtray.spec``): the ``colabtray`` command.

A frozen app has no Python interpreter beside it: ``sys.executable`` is the app itself. The
parts of colabtray that start Python children (the demo's emulator, the emulator's Jupyter
servers, Jupyter's ipykernel) run ``sys.executable -m MODULE ARGS…``, so the bundle accepts
that form too and runs the module as ``python -m`` would, with ``PYTHONPATH`` honoured (the
bootloader ignores it; the emulator puts its stand-in ``google.colab`` there for kernels).
"""

from __future__ import annotations

import os
import runpy
import sys


def _run_module(module: str, args: list[str]) -> None:
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[1:1] = extra  # after the script's own entry, as python does
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main() -> None:
    if getattr(sys, "frozen", False) and len(sys.argv) >= 3 and sys.argv[1] == "-m":
        _run_module(sys.argv[2], sys.argv[3:])
        return
    from colabtray.launch import main as colabtray_main

    sys.exit(colabtray_main())


if __name__ == "__main__":
    main()
