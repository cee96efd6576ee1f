"""Assemble the emulator: one aiohttp server for every remote party, plus runtime proxies.

Lifecycle: listen, print the ``export`` lines and the ready line, run until SIGINT/SIGTERM/
SIGHUP, then stop every runtime (Jupyter and kernels) and remove the temp dir. An ``atexit``
hook repeats the kill and the removal for crash paths.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import shlex
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from aiohttp import web

from colabtray.emulator.admin import Admin
from colabtray.emulator.backend import Backend
from colabtray.emulator.config import EmulatorConfig
from colabtray.emulator.faults import make_faults
from colabtray.emulator.guards import rejections
from colabtray.emulator.oauth import OAuth
from colabtray.emulator.public_api import PREFIX as PUBLIC_API_PREFIX
from colabtray.emulator.public_api import PublicApi
from colabtray.emulator.requestlog import make_request_log
from colabtray.emulator.runtimes import RuntimeManager
from colabtray.emulator.state import EmulatorState
from colabtray.emulator.tokens import KNOWN_SCOPES
from colabtray.listen.connections import ConnectionGuard, listening_socket
from colabtray.listen.http import BUSY, GuardedSite, middleware, server_log

log = logging.getLogger("colabtray.emulator")

READY_LINE = "# colabtray emulator ready"


def build_app(
    state: EmulatorState, manager: RuntimeManager, connections: ConnectionGuard
) -> web.Application:
    oauth = OAuth(state)
    admin = Admin(state, manager, oauth)
    app = web.Application(
        middlewares=[
            middleware(connections),
            admin.guard,
            make_request_log(state),
            make_faults(state),
            rejections,
        ]
    )
    app.add_routes(oauth.routes())
    app.add_routes(Backend(state, manager).routes())
    public_api = PublicApi(state, manager, allowed=state.config.public_api)
    app.add_routes(public_api.routes())
    app.on_shutdown.append(lambda _app: public_api.close())
    app.add_routes(admin.routes())
    return app


def exports(state: EmulatorState, access_token: str) -> dict[str, str]:
    base = state.base_url
    names = {
        "COLABTRAY_COLAB_URL": base,
        "COLABTRAY_GAPI_URL": f"{base}/gapi",
        "COLABTRAY_PUBLIC_API_URL": f"{base}{PUBLIC_API_PREFIX}",
        "COLABTRAY_OAUTH_AUTH_URL": f"{base}/o/oauth2/v2/auth",
        "COLABTRAY_OAUTH_TOKEN_URL": f"{base}/token",
        "COLABTRAY_OAUTH_REVOKE_URL": f"{base}/revoke",
        "COLABTRAY_USERINFO_URL": f"{base}/oauth2/v2/userinfo",
        "COLABTRAY_TOKENINFO_URL": f"{base}/tokeninfo",
        "COLABTRAY_CLIENT_ID": state.client_id,
        "COLABTRAY_CLIENT_SECRET": state.client_secret,
        "COLABTRAY_ACCESS_TOKEN": access_token,
        "COLABTRAY_EMULATOR_URL": base,
    }
    if state.runtime_certificate is not None:
        # The runtimes' self-signed certificate, trusted besides the system's.
        names["COLABTRAY_CA_FILE"] = str(state.runtime_certificate)
    return names


class _CrashCleanup:
    """atexit safety net: kill children and remove the temp dir if ``serve`` did not."""

    def __init__(self, manager: RuntimeManager, temp_dir: Path) -> None:
        self.manager = manager
        self.temp_dir = temp_dir
        self.done = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        with contextlib.suppress(Exception):
            self.manager.kill_all_sync()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


async def serve(config: EmulatorConfig, out: TextIO | None = None) -> int:
    """Run the emulator until a stop signal; returns the process exit status."""
    out = out or sys.stdout
    temp_dir = Path(tempfile.mkdtemp(prefix="colabtray-emulator-"))
    state = EmulatorState(config, temp_dir)
    if config.tls:
        from colabtray.emulator.certificate import self_signed_context

        state.runtime_tls, state.runtime_certificate = self_signed_context(config.host, temp_dir)
    manager = RuntimeManager(state)
    cleanup = _CrashCleanup(manager, temp_dir)
    atexit.register(cleanup)
    connections = ConnectionGuard("emulator", refusal=BUSY)
    runner = web.AppRunner(
        build_app(state, manager, connections),
        access_log=None,
        logger=server_log,
        shutdown_timeout=2.0,
    )
    reclaimer: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
        try:
            sock = listening_socket(config.host, config.port)
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", config.host, config.port, exc.strerror)
            return 1
        await GuardedSite(runner, sock, connections).start()
        port = sock.getsockname()[1]
        host = f"[{config.host}]" if ":" in config.host else config.host
        state.base_url = f"http://{host}:{port}"
        scopes = config.token_scopes or tuple(sorted(KNOWN_SCOPES))
        static = state.tokens.static_token(state.default_email, state.client_id, scopes)
        for name, value in exports(state, static.value).items():
            print(f"export {name}={shlex.quote(value)}", file=out)
        print(READY_LINE, file=out, flush=True)
        log.info(
            "emulator listening on %s (default account %s)", state.base_url, state.default_email
        )
        reclaimer = asyncio.create_task(manager.reclaim_forever())
        await stop.wait()
        log.info("stopping")
        return 0
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if reclaimer is not None:
            reclaimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reclaimer
        # Stop taking requests first (an assign still starting is cancelled and cleans up
        # after itself), then stop every runtime.
        await runner.cleanup()
        await manager.close()
        cleanup()
        atexit.unregister(cleanup)
