"""What feeds a mount besides a source client: fallback files (later: playlists, schedules, relay pulls)."""
