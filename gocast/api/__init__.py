"""The REST API v1 (/api/v1): routes, API keys, OpenAPI."""
