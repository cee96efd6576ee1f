"""System integration: one instance and the control channel, logs, trust in certificates,
proxies from the environment, memory, an asyncio loop in a thread."""
