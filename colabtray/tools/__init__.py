"""The runtime from the user's own tools: shell, SSH, file copies."""
