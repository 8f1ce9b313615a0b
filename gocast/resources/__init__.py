"""twisted.web resources: health now; admin, status, API and HLS later."""
