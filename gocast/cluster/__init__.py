"""
The cluster: relays of a primary's mounts (Icecast's master mode), and
later node discovery, shared state and routing over Redis.
"""
