# -*- test-case-name: tests.test_api -*-
"""
``/api/v1/docs``: Swagger UI for the API, served from the swagger-ui-bundle
package (PyPI) on this server, never from a CDN. Its few files are read
once, at startup, and served from memory.
"""

from __future__ import annotations

import os
from typing import List

from twisted.web.server import Request
from twisted.web.util import redirectTo

#: The Swagger UI files the page loads, and their content types.
ASSETS = {"swagger-ui.css": b"text/css", "swagger-ui-bundle.js": b"text/javascript",
          "swagger-ui-standalone-preset.js": b"text/javascript", "favicon-32x32.png": b"image/png",
          "favicon-16x16.png": b"image/png"}

PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>GoCast API</title>
<link rel="stylesheet" href="swagger-ui.css">
<link rel="icon" type="image/png" href="favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script>
<script src="swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "../openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"
});
</script>
</body>
</html>
"""


def assets_folder() -> str:
    import swagger_ui_bundle

    return str(swagger_ui_bundle.swagger_ui_path)


class SwaggerDocs:
    """Renders the page and its assets; ``rest`` is the path after ``docs``."""

    def __init__(self, folder: str = ""):
        folder = folder or assets_folder()
        self.assets = {}
        for name in ASSETS:
            with open(os.path.join(folder, name), "rb") as f:
                self.assets[name] = f.read()

    def render(self, request: Request, rest: List[str]) -> bytes:
        if not rest:
            return redirectTo(request.uri.split(b"?")[0] + b"/", request)
        if rest == [""] or rest == ["index.html"]:
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            return PAGE
        if len(rest) == 1 and rest[0] in self.assets:
            request.setHeader(b"content-type", ASSETS[rest[0]])
            request.setHeader(b"cache-control", b"public, max-age=86400")
            return self.assets[rest[0]]
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"no such file\n"

