"""The bridge in the running app: started for the core's runtimes, asked over the control
channel by ``colabtray url`` and ``colabtray status --json``.

Commands (one JSON line each way, see :mod:`colabtray.ipc`):

* ``url`` ``{"runtime": NAME_OR_ENDPOINT}`` → ``{"name", "endpoint", "url", "gateway_command"}``
* ``urls`` ``{}`` → ``{"runtimes": {endpoint: {"name", "url"}}}``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from colabtray.bridge.service import Bridge, bridge_registry
from colabtray.ipc import ControlServer, IpcError

if TYPE_CHECKING:
    from colabtray.core.app import Core
    from colabtray.core.registry import RuntimeRegistry


def find_runtime(registry: RuntimeRegistry, query: str) -> str | None:
    """The endpoint named by ``query``: an endpoint, or a runtime's name (any case)."""
    wanted = query.strip()
    if wanted in registry.state.runtimes:
        return wanted
    matches = [ep for name, rt in registry.runtimes() if name.casefold() == wanted.casefold()
               for ep in (rt.endpoint,)]  # fmt: skip
    return matches[0] if len(matches) == 1 else None


def register_commands(server: ControlServer, bridge: Bridge, registry: RuntimeRegistry) -> None:
    def url(args: dict[str, Any]) -> dict[str, Any]:
        query = args.get("runtime")
        if not isinstance(query, str) or not query.strip():
            raise IpcError("Name a runtime (its name or endpoint).")
        endpoint = find_runtime(registry, query)
        if endpoint is None:
            known = ", ".join(name for name, _ in registry.runtimes()) or "none"
            raise IpcError(f"No runtime named {query!r} (runtimes: {known}).")
        name = registry.name_of(endpoint)
        address = bridge.url_for(endpoint)
        if address is None:
            raise IpcError(f"{name} has no connection URL right now; try again in a moment.")
        return {
            "name": name,
            "endpoint": endpoint,
            "url": address,
            "gateway_command": bridge.gateway_command(endpoint),
        }

    def urls(_args: dict[str, Any]) -> dict[str, Any]:
        return {
            "runtimes": {
                rt.endpoint: {"name": name, "url": bridge.url_for(rt.endpoint)}
                for name, rt in registry.runtimes()
            }
        }

    server.register("url", url)
    server.register("urls", urls)


def start_for(core: Core, server: ControlServer, **options: object) -> Bridge:
    """Start the bridge for the core's runtimes, attach it, answer ``url``; on the core's loop.

    ``core.stop()`` stops the bridge.
    """
    bridge = bridge_registry(core.settings, core.registry, **options)
    core.attach_bridge(bridge)
    register_commands(server, bridge, core.registry)
    return bridge
