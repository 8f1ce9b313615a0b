"""Listener authentication: the gate and its backends, and the client address behind trusted proxies."""
