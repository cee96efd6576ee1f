"""What every listener of colabtray has in common, whoever it serves.

The editor bridge, the sign-in receiver, the control socket and the emulator each accept
connections from any local process. They share three defences, one module each:

* :mod:`~colabtray.listen.connections`: how many connections a listener holds and how long
  it waits on one that sends nothing useful (plain asyncio, for HTTP and the control socket);
* :mod:`~colabtray.listen.targets`: a request target is a path and a query, nothing else, and
  an upstream URL is built from its parts, never by gluing strings;
* :mod:`~colabtray.listen.http`: the aiohttp side of both (a site that serves through the
  guard, and the checks every HTTP request passes before its handler sees it).
"""
