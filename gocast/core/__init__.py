"""
The sans-IO domain: mounts with their frame stream and subscribers, the
mount registry (fallback, moving listeners) and the event bus. Nothing here
touches a socket or the reactor; time comes in as arguments.
"""
