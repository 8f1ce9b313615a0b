# -*- test-case-name: tests.test_embed -*-
"""
The embeddable player:

- ``GET /embed/<mount>``: the full player (cover, station, now playing,
  play/pause, volume, live state, the listener count if asked);
- ``GET /embed/<mount>/mini``: one row, for a site's header or footer;
- ``GET /embed/<mount>/code``: the HTML to paste (an iframe, the mini
  iframe, and the script-tag variant), as a page or ``?format=json``;
- ``GET /embed/-/<file>``: the player's script, styles, the script-tag
  loader and hls.js, served by GoCast (no third-party CDN).

Query: ``theme=light|dark|auto``, ``color=ff6600`` (the accent, 3 or 6 hex
digits), ``autoplay=true|false``, ``listeners=true|false`` (show the
count), ``token=`` (a listener token, passed on to the streams). Anything
else in those is a 400 with the reason. Pages may be framed by any site
(that is what they are for); what they show of the stream (its name, its
titles) is escaped, and the page's script is the only one it runs.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
from typing import Any, Dict, Optional, Tuple
from urllib.parse import quote, urlencode

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..config import hls_variants
from ..core.text import scrub
from ..player import STATIC, VENDOR
from .site import public_base, request_arg

#: The files ``/embed/-/`` serves, and where each lives.
ASSETS = {b"player.js": STATIC, b"player.css": STATIC, b"embed.js": STATIC, b"hls.light.min.js": VENDOR}
THEMES = ("light", "dark", "auto")
_COLOR = re.compile(r"[0-9a-fA-F]{3}([0-9a-fA-F]{3})?")
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
#: The page runs its own script only; it may reach its own server (streams, the metadata WebSocket).
PAGE_POLICY = (b"default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self' blob:; "
               b"connect-src 'self' ws: wss:; img-src 'self' data: https:; worker-src 'self' blob:; "
               b"base-uri 'none'; form-action 'none'")

PLAY_ICONS = ('<svg class="play-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M8 5v14l11-7z"/></svg>'
              '<svg class="pause-icon" viewBox="0 0 24 24" aria-hidden="true">'
              '<path d="M6 5h4v14H6zM14 5h4v14h-4z"/></svg>')
SPEAKER_ICON = ('<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 '
                '14 8v8a4.5 4.5 0 0 0 2.5-4z"/></svg>')


class Options:
    """The query's settings, checked."""

    def __init__(self, request: Request):
        self.theme = _arg(request, b"theme") or "light"
        self.color = _arg(request, b"color") or ""
        self.autoplay = _flag(request, b"autoplay")
        self.listeners = _flag(request, b"listeners")
        self.token = _arg(request, b"token") or ""

    def problem(self) -> Optional[str]:
        if self.theme not in THEMES:
            return "theme must be light, dark or auto"
        if self.color and not _COLOR.fullmatch(self.color):
            return "color must be 3 or 6 hex digits, without # (color=ff6600)"
        if self.autoplay is None or self.listeners is None:
            return "autoplay and listeners must be true or false"
        if self.token and not _TOKEN.fullmatch(self.token):
            return "token must be printable text"
        return None

    def query(self) -> str:
        """The settings that differ from the defaults, as a query string (for the code snippets)."""
        pairs = [("theme", self.theme if self.theme != "light" else ""), ("color", self.color),
                 ("autoplay", "true" if self.autoplay else ""), ("listeners", "true" if self.listeners else "")]
        return urlencode([(name, value) for name, value in pairs if value])


@functools.lru_cache(maxsize=len(ASSETS))
def _read(path: str) -> bytes:
    """A player file, read once (they change only with GoCast itself)."""
    with open(path, "rb") as f:
        return f.read()


def _arg(request: Request, name: bytes) -> Optional[str]:
    value = request_arg(request, name)
    return value.strip() if value is not None else None


def _flag(request: Request, name: bytes) -> Optional[bool]:
    value = (_arg(request, name) or "false").lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(value)


class EmbedResource(Resource):
    isLeaf = True

    def __init__(self, registry: Any):
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> Any:
        parts = request.postpath
        if parts and parts[0] == b"-":
            return self.asset(request, b"/".join(parts[1:]))
        path = "/" + "/".join(p.decode("utf-8", "replace") for p in parts if p)
        found = self.locate(path)
        if found is None:
            return self.refuse(request, 404, "no mount %s to embed" % scrub(path)[:200])
        mount_path, kind = found
        options = Options(request)
        problem = options.problem()
        if problem:
            return self.refuse(request, 400, problem)
        if kind == "code":
            return self.code(request, mount_path, options)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"content-security-policy", PAGE_POLICY)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"referrer-policy", b"no-referrer")
        return self.page(mount_path, kind, options).encode("utf-8")

    def locate(self, path: str) -> Optional[Tuple[str, str]]:
        """``(mount, kind)``: ``/live`` → full, ``/live/mini`` → mini, ``/live/code`` → code; None if no mount."""
        if self.known(path):
            return path, "full"
        base, _, last = path.rpartition("/")
        if last in ("mini", "code") and self.known(base):
            return base, last
        return None

    def known(self, path: str) -> bool:
        return bool(path) and path != "/" and (self.registry.get(path) is not None
                                               or self.registry.is_configured(path))

    def asset(self, request: Request, name: bytes) -> Any:
        folder = ASSETS.get(name)
        if folder is None or not os.path.exists(os.path.join(folder, name.decode())):
            return self.refuse(request, 404, "no such player file%s" % (
                " (hls.js is copied from npm by GoCast's build: reinstall GoCast, or run ./dev setup)"
                if folder is VENDOR else ""))
        request.setHeader(b"content-type", b"text/css; charset=utf-8" if name.endswith(b".css")
                          else b"text/javascript; charset=utf-8")
        request.setHeader(b"cache-control", b"public, max-age=3600")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"access-control-allow-origin", b"*")  # the script-tag loader runs on other sites
        return _read(os.path.join(folder, name.decode()))

    @staticmethod
    def refuse(request: Request, status: int, reason: str) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (reason + "\n").encode("utf-8")

    # The pages

    def describe(self, path: str) -> Dict[str, str]:
        """The station's name and what is on now, scrubbed (they come from the source)."""
        mount = self.registry.get(path)
        config = mount.config if mount is not None else self.registry.config.mounts[path]
        headers = dict(mount.listener_headers()) if mount is not None else {}
        name = headers.get("icy-name") or config.stream_name or path.lstrip("/")
        return {"name": scrub(name)[:200], "title": scrub(mount.title if mount else "")[:300],
                "artist": scrub(mount.artist if mount else "")[:300]}

    def settings(self, path: str, options: Options) -> Dict[str, Any]:
        """What the page's script needs: where the streams are, and the options."""
        mount = self.registry.get(path)
        config = mount.config if mount is not None else self.registry.config.mounts[path]
        quoted = quote(path, safe="/")
        hls = None
        if config.hls.enabled:
            name = "master.m3u8" if hls_variants(self.registry.config, path) else "playlist.m3u8"
            hls = "/hls%s/%s" % (quoted, name)
        return {"mount": path, "name": self.describe(path)["name"], "stream": quoted, "hls": hls,
                "ws": "/ws" + quoted, "status": "/status-json.xsl", "color": options.color,
                "autoplay": options.autoplay, "listeners": options.listeners, "token": options.token}

    def page(self, path: str, kind: str, options: Options) -> str:
        shown = self.describe(path)
        settings = self.settings(path, options)
        data = json.dumps(settings).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        name = html.escape(shown["name"])
        hls_script = '<script src="/embed/-/hls.light.min.js" defer></script>\n' if settings["hls"] else ""
        return PAGE % {
            "kind": kind, "theme": options.theme, "name": name, "config": data, "hls_script": hls_script,
            "initial": html.escape(shown["name"][:1].upper() or "♪"),
            "title": html.escape(shown["title"] or shown["name"]), "artist": html.escape(shown["artist"]),
            "play_icons": PLAY_ICONS, "speaker": SPEAKER_ICON}

    def code(self, request: Request, path: str, options: Options) -> bytes:
        snippets = self.snippets(request, path, options)
        if _arg(request, b"format") == "json":
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"access-control-allow-origin", b"*")
            return json.dumps(snippets).encode("utf-8")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", b"default-src 'none'; frame-src 'self'")
        blocks = "".join('<h2>%s</h2>\n<textarea readonly rows="4" cols="90" aria-label="%s">%s</textarea>\n'
                         % (label, label, html.escape(snippets[key]))
                         for key, label in (("iframe", "The player"), ("mini", "The mini player"),
                                            ("script", "The player, as a script tag")))
        return CODE_PAGE.format(name=html.escape(self.describe(path)["name"]), blocks=blocks,
                                preview=snippets["iframe"]).encode("utf-8")

    def snippets(self, request: Request, path: str, options: Options) -> Dict[str, str]:
        base = public_base(request, self.registry.config.server)
        query = options.query()
        page = "%s/embed%s" % (base, quote(path, safe="/"))
        title = html.escape("%s player" % self.describe(path)["name"], quote=True)
        iframe = ('<iframe src="%s" width="300" height="150" frameborder="0" allow="autoplay" title="%s" '
                  'style="border:0;max-width:100%%"></iframe>')
        data = "".join(' data-%s="%s"' % (name, html.escape(value, quote=True))
                       for name, value in (("mount", path), ("theme", options.theme if options.theme != "light"
                                                             else ""), ("color", options.color),
                                           ("autoplay", "true" if options.autoplay else ""),
                                           ("listeners", "true" if options.listeners else "")) if value)
        return {
            "iframe": iframe % (html.escape(page + ("?" + query if query else ""), quote=True), title),
            "mini": iframe.replace('width="300" height="150"', 'width="100%%" height="60"') % (
                html.escape(page + "/mini" + ("?" + query if query else ""), quote=True), title),
            "script": '<script src="%s/embed/-/embed.js"%s async></script>' % (html.escape(base, quote=True), data),
            "url": page,
        }



PAGE = """<!doctype html>
<html lang="en" class="%(kind)s" data-theme="%(theme)s" data-state="paused">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(name)s</title>
<link rel="stylesheet" href="/embed/-/player.css">
<script type="application/json" id="gocast-player-config">%(config)s</script>
%(hls_script)s<script src="/embed/-/player.js" defer></script>
</head>
<body>
<main class="player" aria-label="%(name)s player">
  <div class="artwork" id="artwork" role="img" aria-label="Cover"><span class="initial" aria-hidden="true">%(initial)s</span></div>
  <div class="body">
    <div class="station">%(name)s</div>
    <div class="text" aria-live="polite">
      <div class="title" id="title">%(title)s</div>
      <div class="artist" id="artist">%(artist)s</div>
    </div>
    <div class="controls">
      <button class="play" id="play" type="button" aria-label="Play" aria-pressed="false" title="Play">%(play_icons)s</button>
      <button class="mute" id="mute" type="button" aria-label="Mute" aria-pressed="false" title="Mute">%(speaker)s</button>
      <input class="volume" id="volume" type="range" min="0" max="100" step="1" value="100" aria-label="Volume">
    </div>
    <div class="meta"><span class="state" id="state" role="status">Press play</span><span id="listeners"></span></div>
  </div>
</main>
<audio id="audio" preload="none"></audio>
</body>
</html>
"""

CODE_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Embed {name}</title></head>
<body>
<h1>Embed {name} on your site</h1>
<p>Paste one of these into your page. Add <code>?theme=dark</code>, <code>&amp;color=ff6600</code>,
<code>&amp;autoplay=true</code> or <code>&amp;listeners=true</code> to this page's address to change them.</p>
{blocks}<h2>Preview</h2>
{preview}
</body>
</html>
"""
