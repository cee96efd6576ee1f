"""The editor bridge: each runtime as a plain local Jupyter server on 127.0.0.1.

See :mod:`colabtray.bridge.service` for the whole, :mod:`~colabtray.bridge.proxy` for one
runtime's server, :mod:`~colabtray.bridge.guard` for who may use it,
:mod:`~colabtray.bridge.kernel_messages` for Colab's credentials requests and
:mod:`~colabtray.bridge.discovery` for the ``jpserver-*.json`` files.
"""

from colabtray.bridge.service import Bridge, bridge_registry

__all__ = ["Bridge", "bridge_registry"]
