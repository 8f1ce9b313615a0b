"""Audio GoCast plays by itself: fallback files (later: intros, ads)."""
