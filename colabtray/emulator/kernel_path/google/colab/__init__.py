"""The emulator's stand-in for Colab's kernel-side ``google.colab`` (requests to the frontend).

Only what makes a kernel talk to its client as Colab's does: ``drive.mount()``,
``auth.authenticate_user()`` and ``userdata.get()`` ask the client for credentials or a secret
with a ``colab_request`` and wait for its ``colab_reply``. See ``_message`` for the wire shape.
"""
