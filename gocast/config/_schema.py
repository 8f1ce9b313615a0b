# -*- test-case-name: tests.test_config -*-
"""
The whole configuration surface of GoCast, designed once.

Each section is a frozen attrs class; every key has a default and a one-line
description (they feed ``gocast config show`` and docs/configuration.md).
Keys of features not built yet are marked ``implemented=False``: a file may
set them (they are validated) and gets a warning that they are ignored.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import attr

from .._version import __version__
from ._kinds import (
    CIDR,
    NetworkText,
    URL,
    Date,
    Duration,
    Endpoint,
    HostPort,
    Int,
    ListOf,
    MapOf,
    Size,
    Str,
    MountPath,
    normalise_mount,
)
from ._mount import MountConfig
from ._report import Path, Reporter
from ._section import Section, setting

#: Events published on the event bus; webhooks subscribe to these by name.
EVENT_NAMES = (
    "source.connect",
    "source.disconnect",
    "source.metadata",
    "source.fallback",
    "source.codec_mismatch",
    "listener.connect",
    "listener.disconnect",
    "listener.kicked",
    "listener.denied",
    "mount.created",
    "mount.removed",
    "stats.milestone",
    "config.reloaded",
    "config.reload_failed",
    "relay.connected",
    "relay.disconnected",
    "relay.failover",
    "cluster.node_joined",
    "cluster.node_left",
    "cluster.leader",
    "recording.started",
    "recording.finished",
    "recording.failed",
    "recording.uploaded",
    "recording.upload_failed",
    "transcoder.started",
    "transcoder.restarted",
)

#: What a webhook sends unless told: everything but the per-listener events.
DEFAULT_WEBHOOK_EVENTS = tuple(name for name in EVENT_NAMES
                               if name not in ("listener.connect", "listener.disconnect"))

#: What an API key may be allowed to do.
PERMISSIONS = (
    "read_stats",
    "read_mounts",
    "write_mounts",
    "write_metadata",
    "manage_listeners",
    "manage_sources",
    "manage_recordings",
    "reload",
    "manage_keys",
)

DEFAULT_PASSWORD = "hackme"

#: URL paths GoCast serves itself; no mount may shadow them.
RESERVED_PATHS = ("/health", "/status-json.xsl", "/status.xsl", "/admin.cgi", "/metrics", "/api",
                  "/hls", "/dash", "/ws", "/embed")


def is_reserved(path: str, admin_root: str = "/admin") -> bool:
    """Whether a mount at ``path`` would hide one of GoCast's own endpoints."""
    return any(path == p or path.startswith(p + "/") for p in RESERVED_PATHS + (admin_root,))


@attr.frozen
class ServerConfig:
    hostname: str = setting("localhost", "Public host name, used in stream URLs and directory listings.")
    listen: str = setting("0.0.0.0", "Address to listen on: 0.0.0.0 (all IPv4), :: (all), or 127.0.0.1.")
    port: int = setting(8000, "Port for sources, listeners, admin and API (Icecast's default is 8000).",
                        Int(1, 65535))
    location: str = setting("Earth", "Where the server is, as shown in status pages.")
    admin_email: str = setting("admin@localhost", "Contact address shown in status pages.")
    server_id: str = setting("", "Product token sent in the Server header and as status pages' server_id; "
                             "empty: GoCast/<version>.",
                             Str(pattern=r"([!-~]{1,64}( [!-~]{1,64}){0,3})?",
                                 expected="a product token such as MyRadio/2.0 (printable ASCII, "
                                          "at most four words)"))
    endpoints: Tuple[str, ...] = setting((), "Twisted endpoint strings to listen on instead of listen and "
                                         "port: tcp:8000:interface=0.0.0.0, systemd:domain=INET:index=0 "
                                         "(socket activation), haproxy:tcp:8001 (PROXY protocol from a load "
                                         "balancer).", ListOf(Endpoint()))
    admin_root: str = setting("/admin", "URL path of the Icecast-compatible admin interface.",
                              Str(pattern=r"/[A-Za-z0-9._~/-]*", expected="a URL path such as /admin"))
    workers: int = setting(1, "Processes serving listeners: 1 is this process alone; N > 1 starts N worker "
                           "processes that take the listeners this process admits (all the cores of one "
                           "machine), fed by it as local relays. Sources, admin and API stay here.",
                           Int(1, 64))
    shutdown_timeout: float = setting(30.0, "How long listeners and sources may drain on shutdown.", Duration())
    drain_listeners: bool = setting(True, "Let listeners drain on shutdown; false closes them at once.")
    restrict_mounts: bool = setting(False, "Only accept sources on mounts listed under mounts.")
    trusted_proxies: Tuple[Any, ...] = setting((), "Proxies whose X-Forwarded-For / Forwarded headers "
                                               "are believed.", ListOf(CIDR()))
    data_dir: str = setting("", "Folder for the state database, recordings and caches; empty: "
                            "systemd's StateDirectory ($STATE_DIRECTORY) when set, else gocast-data "
                            "in the working folder.")
    state_db: str = setting("state.db", "SQLite file for mounts and API keys created at run time "
                            "(relative paths are under data_dir).")

    @property
    def product(self) -> str:
        """What the Server header says: ``server_id``, else ``GoCast/<version>``."""
        return self.server_id or "GoCast/" + __version__


@attr.frozen
class ShoutcastConfig:
    enabled: bool = setting(True, "Accept SHOUTcast v1 sources (BUTT's and Liquidsoap's icy protocol, "
                            "hardware encoders) on a second port.")
    port: int = setting(0, "Port for SHOUTcast v1 sources; 0 means server.port + 1, as Icecast does.",
                        Int(0, 65535))
    mount: str = setting("/live", "Mount that SHOUTcast v1 sources stream to.", MountPath())


@attr.frozen
class SslConfig:
    enabled: bool = setting(False, "Also listen with TLS.")
    port: int = setting(8443, "TLS port.", Int(1, 65535))
    cert: str = setting("", "Certificate file (PEM).")
    key: str = setting("", "Private key file (PEM).")
    chain: str = setting("", "Intermediate certificates file (PEM), if not in cert.")
    min_version: str = setting("TLSv1.2", "Oldest TLS version accepted.", Str(("TLSv1.2", "TLSv1.3")))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if self.enabled and not (self.cert and self.key):
            report.error(path, "TLS is enabled but cert and key are not both set", at="key")


@attr.frozen
class AuthConfig:
    source_password: str = setting(DEFAULT_PASSWORD, "Password sources use (user 'source') on any mount "
                                   "without its own.", secret=True)
    relay_user: str = setting("relay", "User name relays send to the primary (Icecast's master-username); "
                              "this server takes it for /admin/streamlist.txt.")
    relay_password: str = setting("", "Password of relay_user (Icecast's relay-password and master-password); "
                                  "empty: /admin/streamlist.txt takes only the admin's credentials.",
                                  secret=True)
    admin_user: str = setting("admin", "Administrator user name.")
    admin_password: str = setting(DEFAULT_PASSWORD, "Administrator password.", secret=True)


@attr.frozen
class LimitsConfig:
    max_clients: int = setting(1000, "Most connections at once (listeners, sources, admin).", Int(1))
    reserved_connections: int = setting(20, "Connections kept beyond max_clients for the admin, the API, "
                                        "the dashboard, metrics and health checks.", Int(0))
    max_connections_per_ip: int = setting(100, "Most connections at once from one address (IPv6: one /64); "
                                          "0 is no limit. Clients behind server.trusted_proxies or a "
                                          "haproxy: endpoint count by their own address.", Int(0))
    max_sources: int = setting(16, "Most sources at once.", Int(1))
    max_listeners_per_mount: int = setting(0, "Default listener limit per mount; 0 is no limit.", Int(0))
    queue_size: int = setting(512 * 1024, "How far a listener may fall behind before it is dropped.",
                              Size())
    burst_size: int = setting(64 * 1024, "Bytes sent at once to a new listener so playback starts fast.",
                              Size())
    client_timeout: float = setting(30.0, "Idle time before a listener that receives nothing is closed.",
                                    Duration(positive=True))
    header_timeout: float = setting(15.0, "Time a client has to send a request's headers, for every "
                                    "request on a connection.", Duration(positive=True))
    body_timeout: float = setting(30.0, "Time a client has to send a request's body (API, admin forms), "
                                  "from the end of its headers.", Duration(positive=True))
    source_timeout: float = setting(10.0, "Time a source may send nothing before it is cut.",
                                    Duration(positive=True))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if self.burst_size >= self.queue_size:
            report.error(
                path + ("burst_size",),
                "burst_size (%d) must be smaller than queue_size (%d), or every new listener "
                "is dropped at once" % (self.burst_size, self.queue_size),
            )


@attr.frozen
class LoggingConfig:
    format: str = setting("text", "Log format: text for people, json for ELK/Loki/Splunk.",
                          Str(("text", "json")))
    level: str = setting("info", "Least severe level logged.", Str(("debug", "info", "warn", "error")))
    include_request_id: bool = setting(True, "Tag each log line with the request ID.")
    output: str = setting("", "stdout, stderr, or a file path; empty: where twistd logs (stdout in the "
                               "foreground, twistd.log when daemonized, or its --logfile or --syslog).")
    access_log: str = setting("", "File for the access log; empty logs requests with the rest.")
    access_log_rotation: str = setting("daily", "When the access log file is rotated: daily, past a "
                                       "size (size:10MB), or none (logrotate's job: GoCast reopens it on "
                                       "SIGUSR1).",
                                       Str(pattern=r"daily|none|size:[0-9]+(\.[0-9]+)?\s*[kKmMgG]?i?[bB]?",
                                           expected="daily, none or size:<size> such as size:10MB"))


@attr.frozen
class MetricsConfig:
    enabled: bool = setting(True, "Expose Prometheus metrics.")
    path: str = setting("/metrics", "URL path of the metrics.")
    auth_required: bool = setting(False, "Require admin credentials or an API key to read metrics.")


@attr.frozen
class GeoipConfig:
    enabled: bool = setting(False, "Look up each listener's location.")
    database: str = setting("", "MaxMind GeoLite2/GeoIP2 database file (.mmdb).")
    precision: str = setting("country", "Most detail stored: country, region or city.",
                             Str(("country", "region", "city")))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if self.enabled and not self.database:
            report.error(path, "geoip is enabled but no database is set", at="key")


@attr.frozen
class CorsConfig:
    enabled: bool = setting(True, "Send CORS headers so web players can read streams and metadata.")
    allowed_origins: Tuple[str, ...] = setting(("*",), "Origins allowed; * allows all.", ListOf(Str()))
    allowed_methods: Tuple[str, ...] = setting(("GET", "HEAD", "OPTIONS"), "Methods allowed.", ListOf(Str()))
    allowed_headers: Tuple[str, ...] = setting(
        ("Icy-MetaData", "Range", "Authorization", "Content-Type"), "Request headers allowed.", ListOf(Str()))
    exposed_headers: Tuple[str, ...] = setting(
        ("icy-metaint", "icy-name", "icy-br", "icy-genre", "icy-url", "icy-description", "icy-pub",
         "Content-Type"), "Response headers scripts may read.", ListOf(Str()))
    allow_credentials: bool = setting(False, "Allow cookies and credentials on cross-origin requests.")
    max_age: float = setting(3600.0, "How long browsers may cache a preflight answer.", Duration())


@attr.frozen
class AdminConfig:
    enabled: bool = setting(True, "Serve the admin interface and dashboard.", implemented=False)
    dashboard: bool = setting(True, "Serve the live dashboard at <admin_root>/dashboard.")
    session_timeout: float = setting(43200.0, "How long a dashboard login lasts.", Duration(positive=True))


@attr.frozen
class DirectoryConfig:
    enabled: bool = setting(False, "List public mounts in stream directories (YP).")
    urls: Tuple[str, ...] = setting(("https://dir.xiph.org/cgi-bin/yp-cgi",), "Directory servers.",
                                    ListOf(URL()))
    interval: float = setting(600.0, "Most time between updates (the directory may ask for less).",
                              Duration(minimum=30.0))


@attr.frozen
class ApiKeyConfig:
    key: str = setting("", "The key itself (gck_...).", secret=True)
    permissions: Tuple[str, ...] = setting((), "What the key may do; * for everything.",
                                           ListOf(Str(PERMISSIONS + ("*",))))
    expires: Optional[Any] = setting(None, "Date the key stops working.", Date())
    description: str = setting("", "What the key is for.")

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if not self.key:
            report.error(path, "key is required", at="key")
        elif len(self.key) < 16:
            report.warning(path + ("key",), "key is shorter than 16 characters; it is easy to guess")


@attr.frozen
class OAuthConfig:
    enabled: bool = setting(False, "Let administrators sign in with an OpenID Connect provider.")
    provider: str = setting("generic", "Provider: auth0, google, github, keycloak, okta, azure or generic.",
                            Str(("auth0", "google", "github", "keycloak", "okta", "azure", "generic")))
    client_id: str = setting("", "OAuth client id.")
    client_secret: str = setting("", "OAuth client secret.", secret=True)
    issuer: Optional[str] = setting(None, "OpenID Connect issuer URL.", URL())
    scopes: Tuple[str, ...] = setting(("openid", "profile", "email"), "Scopes requested.", ListOf(Str()))


@attr.frozen
class SyncConfig:
    enabled: bool = setting(False, "Join the cluster through Redis: this node registers itself (heartbeat), "
                            "finds the others, and relays with auto_relay choose and change upstreams there.")
    nodes: Tuple[str, ...] = setting((), "The nodes of the cluster (host:port), for reference: without "
                                     "cluster.advertise, the entry naming this machine's host name (or its listen "
                                     "address) and server.port is this node's address and id. Nodes find each "
                                     "other in Redis.", ListOf(HostPort()))
    backend: str = setting("redis", "Where shared state lives.", Str(("redis",)))
    status_totals: bool = setting(False, "/status-json.xsl counts every node's listeners of a mount, not only "
                                  "this node's (what directory and player widgets read).")
    redis_url: str = setting("redis://localhost:6379", "Redis server for shared state: redis://[:password@]"
                             "host:port[/db], or rediss:// for TLS.", URL(("redis", "rediss")), operator=True)


#: What a region of ``cluster.routing.regions`` may list: ISO country codes and continents.
PLACE = Str(pattern=r"[A-Z]{2}|europe|asia|africa|north_america|south_america|oceania|antarctica",
            expected="an ISO country code (DE) or a continent (europe asia africa north_america south_america "
                     "oceania antarctica)")


@attr.frozen
class RoutingConfig:
    enabled: bool = setting(False, "Send each new listener (ICY, and HLS playlist requests) to the best node "
                            "carrying the mount with a 302: the node of the listener's region (GeoIP, "
                            "overrides), else the one its country's listeners reach fastest, skipping full "
                            "nodes. Needs geoip for countries.")
    regions: Dict[str, Tuple[str, ...]] = setting(dict, "Region name: the countries (ISO codes) and continents "
                                                  "it serves, as in eu [DE FR europe]. Empty: node regions "
                                                  "named like continents (eu, us, na, sa, asia, ap, oc, af, or "
                                                  "eu-west, us-east...) serve them.", MapOf(ListOf(PLACE)))
    overrides: Dict[str, str] = setting(dict, "Address block: region, before GeoIP, as in "
                                        "\"10.0.0.0/8\" us-west (the longest block wins).",
                                        MapOf(Str(allow_empty=False), key=NetworkText()))
    latency: bool = setting(True, "Where the region does not decide, prefer the node whose listeners of the "
                            "same country have the shortest round trip (measured by each node, TCP).")


@attr.frozen
class ClusterConfig:
    role: str = setting("standalone", "standalone, primary (has the sources) or relay (pulls from the "
                        "primary).", Str(("standalone", "primary", "relay")))
    advertise: Optional[str] = setting(None, "Address other nodes and listeners reach this node at "
                                       "(host:port); it is also the node's id in the cluster. Unset: this "
                                       "node's entry of sync.nodes, else the listen address (or host name) "
                                       "and server.port.", HostPort())
    primary: Optional[str] = setting(None, "relay: the primary (GoCast or Icecast) whose "
                                     "/admin/streamlist.txt lists the mounts to relay, asked with "
                                     "auth.relay_user and auth.relay_password (Icecast's master mode).",
                                     HostPort(), operator=True)
    update_interval: float = setting(30.0, "relay: how often the primary's stream list is read again "
                                     "(Icecast's master-update-interval).", Duration(positive=True))
    on_demand: bool = setting(False, "relay: pull a mount of the primary only while it has listeners "
                              "here (Icecast's relays-on-demand).")
    secret: str = setting("", "Shared secret of the cluster: node-to-node pulls carry a token signed with "
                          "it (never a source or admin password). Empty: the first node makes one and keeps "
                          "it in Redis for the others.", secret=True)
    region: str = setting("", "Region of this node: relays prefer upstreams of their own region, and a full "
                          "node sends listeners to a sibling of its region.")
    auto_relay: bool = setting(False, "relay: relay every mount the cluster carries (not hidden ones), or "
                               "those of mounts, choosing upstreams by region, hops and load.")
    mounts: Tuple[str, ...] = setting((), "relay: only these mounts (of the primary's stream list, or of the "
                                      "cluster with auto_relay); empty: all.", ListOf(MountPath()))
    max_hops: int = setting(3, "Longest relay chain from a mount's origin: a relay never takes a mount from a "
                            "node already this many hops away.", Int(1, 16))
    max_bandwidth: int = setting(0, "Bytes per second this node may send to listeners; near it (90%) no new "
                                 "relay chooses it as upstream. 0: no limit.", Size())
    max_listeners: int = setting(0, "Listeners this node takes in all; past it (and past a mount's "
                                 "max_listeners) new ones are redirected to a sibling of its region. "
                                 "0: no limit.", Int(0))
    redirect_when_full: bool = setting(True, "A full node answers a new listener with a 302 to a sibling of "
                                       "its region that carries the mount, instead of a 503.")
    stall_timeout: float = setting(5.0, "A relay whose upstream sends nothing this long switches to another "
                                   "upstream.", Duration(positive=True))
    heartbeat: float = setting(1.0, "How often this node renews its record in Redis.", Duration(positive=True))
    node_timeout: float = setting(5.0, "A node whose record is not renewed this long has left the cluster.",
                                  Duration(positive=True))
    sync: SyncConfig = setting(SyncConfig, "Redis: node discovery and failover.")
    routing: RoutingConfig = setting(RoutingConfig, "Geographic load balancing: listeners redirected to the "
                                     "node nearest them.")

    @property
    def discovery(self) -> bool:
        """Whether this node joins the cluster through Redis."""
        return self.sync.enabled

    @property
    def node_role(self) -> str:
        """The role this node has in the cluster: a standalone server that syncs carries its own sources."""
        return "primary" if self.role == "standalone" else self.role

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if self.role == "relay" and not self.primary and not self.sync.enabled:
            report.error(path, "a relay needs primary (host:port), or sync { enabled true redis_url ... } "
                         "to find its upstreams", at="key")
        if self.heartbeat * 2 > self.node_timeout:
            report.error(path, "node_timeout (%gs) must be at least twice heartbeat (%gs)"
                         % (self.node_timeout, self.heartbeat), at="key")


@attr.frozen
class RelayConfig:
    url: str = setting("", "The stream to pull: http(s)://host:port/mount on Icecast, SHOUTcast or GoCast.",
                       URL(), operator=True)
    mount: Optional[str] = setting(None, "Local mount the relay feeds; default: the upstream's path.",
                                   MountPath())
    on_demand: bool = setting(False, "Connect only while the local mount has listeners; the first one "
                              "waits for the upstream.")
    relay_metadata: bool = setting(True, "Ask for the upstream's ICY metadata (Icy-MetaData: 1) and make it "
                                   "the local mount's now-playing.")
    username: str = setting("", "User name sent to the upstream (Basic auth), if any.")
    password: str = setting("", "Password sent to the upstream.", secret=True)
    timeout: float = setting(10.0, "How long connecting may take, and how long the upstream may send "
                             "nothing before the relay reconnects.", Duration(positive=True))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if not self.url and "url" not in raw:  # a url given but refused has its own error
            report.error(path, "url is required", at="key")

    @property
    def local_mount(self) -> str:
        return self.mount or normalise_mount(urlsplit(self.url).path) or "/"


@attr.frozen
class WebhookConfig:
    url: str = setting("", "Where events are POSTed.", URL())
    events: Tuple[str, ...] = setting(DEFAULT_WEBHOOK_EVENTS, "Events sent; * for all. The default leaves out "
                                      "listener.connect and listener.disconnect (one POST per listener): "
                                      "name them to get them.", ListOf(Str(EVENT_NAMES + ("*",))))
    format: str = setting("generic", "Payload shape: generic JSON, discord or slack.",
                          Str(("generic", "discord", "slack")))
    headers: Dict[str, str] = setting(dict, "Extra request headers.", MapOf(Str()),
                                      secret=True)
    retry: int = setting(3, "Retries after a failed delivery, with backoff.", Int(0, 10))
    timeout: float = setting(10.0, "How long one delivery may take.", Duration(positive=True))
    secret: str = setting("", "If set, payloads are signed with HMAC-SHA256 in X-GoCast-Signature.",
                          secret=True)

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if not self.url:
            report.error(path, "url is required", at="key")


@attr.frozen
class Config:
    """The root of a GoCast configuration."""

    server: ServerConfig = setting(ServerConfig, "Listening address, identity and shutdown.")
    shoutcast: ShoutcastConfig = setting(ShoutcastConfig, "SHOUTcast v1 source port.")
    ssl: SslConfig = setting(SslConfig, "TLS on a second port: listeners, sources, admin.")
    auth: AuthConfig = setting(AuthConfig, "Source, relay and admin credentials.")
    limits: LimitsConfig = setting(LimitsConfig, "Connection limits, queues and timeouts.")
    logging: LoggingConfig = setting(LoggingConfig, "Log format, level and destination.")
    metrics: MetricsConfig = setting(MetricsConfig, "Prometheus metrics.")
    geoip: GeoipConfig = setting(GeoipConfig, "Listener locations (MaxMind GeoLite2 database).")
    cors: CorsConfig = setting(CorsConfig, "Cross-origin access for web players, status, metrics and API.")
    admin: AdminConfig = setting(AdminConfig, "Admin interface and dashboard.")
    directory: DirectoryConfig = setting(DirectoryConfig, "Stream directory (YP) listings.", implemented=False)
    api_keys: Dict[str, ApiKeyConfig] = setting(dict, "API keys by name (more are created through the API).",
                                                MapOf(Section(ApiKeyConfig)))
    oauth: OAuthConfig = setting(OAuthConfig, "Single sign-on for administrators.", implemented=False)
    cluster: ClusterConfig = setting(ClusterConfig, "Relays of a primary's mounts and multi-server sync.")
    relays: Dict[str, RelayConfig] = setting(dict, "Mounts fed by pulling another server's stream, by name.",
                                             MapOf(Section(RelayConfig)))
    webhooks: Dict[str, WebhookConfig] = setting(dict, "Webhooks by name.", MapOf(Section(WebhookConfig)))
    mounts: Dict[str, MountConfig] = setting(
        dict, "Mounts by path (live means /live); with none, any mount is accepted.",
        MapOf(Section(MountConfig), key=MountPath()))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        names = {normalise_mount(k): k for k in raw.get("mounts", {}) if isinstance(raw.get("mounts"), dict)}
        self._check_mount_limits(report, names)
        self._check_fallbacks(report, names)
        self._check_relays(report)
        self._check_transcoding(report, names)
        if self.ssl.enabled and self.ssl.port == self.server.port:
            report.error(("ssl", "port"), "ssl.port must differ from server.port (%d)" % self.server.port)
        if self.shoutcast.enabled and self.shoutcast.port == self.server.port:
            report.error(("shoutcast", "port"),
                         "shoutcast.port must differ from server.port (%d)" % self.server.port)

    def _check_mount_limits(self, report: Reporter, names: Dict[Optional[str], str]) -> None:
        queue = self.limits.queue_size
        for mount, cfg in self.mounts.items():
            if is_reserved(mount, self.server.admin_root):
                report.error(("mounts", names.get(mount, mount)),
                             "%s is one of GoCast's own URLs; choose another mount name" % mount, at="key")
            if cfg.burst_size is not None and cfg.burst_size >= queue:
                report.error(
                    ("mounts", names.get(mount, mount), "burst_size"),
                    "burst_size (%d) must be smaller than limits.queue_size (%d)" % (cfg.burst_size, queue),
                )

    def _check_relays(self, report: Reporter) -> None:
        fed: Dict[str, str] = {}
        for name, relay in self.relays.items():
            if not relay.url:
                continue
            mount = relay.local_mount
            if mount == "/" or is_reserved(mount, self.server.admin_root):
                report.error(("relays", name), "%s cannot be a mount; set mount to a path such as /live"
                             % mount, at="key")
            elif mount in fed:
                report.error(("relays", name), "relays %s and %s both feed %s" % (fed[mount], name, mount),
                             at="key")
            fed[mount] = name

    def _check_transcoding(self, report: Reporter, names: Dict[Optional[str], str]) -> None:
        """Each output mount is fed by one transcoder, and by nothing else."""
        fed: Dict[str, str] = {}
        relayed = {relay.local_mount for relay in self.relays.values() if relay.url}
        for mount, cfg in sorted(self.mounts.items()):
            if not cfg.transcoding.enabled:
                continue
            for name, output in cfg.transcoding.outputs.items():
                where = ("mounts", names.get(mount, mount), "transcoding", "outputs", name, "path")
                target = output.path
                other = self.mounts.get(target)
                if target == mount:
                    report.error(where, "%s cannot be its own transcoding output" % mount)
                elif target in fed and fed[target] != mount:
                    report.error(where, "%s is already the transcoding output of %s" % (target, fed[target]))
                elif other is not None and other.transcoding.enabled:
                    report.error(where, "%s transcodes too: an output cannot have outputs of its own" % target)
                elif target in relayed:
                    report.error(where, "a relay feeds %s: publish this output on another mount" % target)
                elif target == "/" or is_reserved(target, self.server.admin_root):
                    report.error(where, "%s is one of GoCast's own URLs; choose another mount name" % target)
                fed[target] = mount
        for mount, cfg in sorted(self.mounts.items()):
            for variant in cfg.hls.variants:
                where = ("mounts", names.get(mount, mount), "hls", "variants")
                if variant not in self.mounts and variant not in fed:
                    report.error(where, "%s is not a mount of this config (nor a transcoding output)" % variant)
                elif variant in self.mounts and not self.mounts[variant].hls.enabled:
                    report.error(where, "%s serves no HLS: set hls { enabled true } on it too" % variant)

    def _check_fallbacks(self, report: Reporter, names: Dict[Optional[str], str]) -> None:
        for mount, cfg in self.mounts.items():
            where = ("mounts", names.get(mount, mount), "fallback")
            if mount in cfg.fallback.mounts:
                report.error(where, "%s falls back to itself" % mount)
                continue
            seen = [mount]
            current: Optional[str] = mount
            while current in self.mounts and self.mounts[current].fallback.mounts:
                current = self.mounts[current].fallback.mounts[0]
                if current in seen:
                    report.error(where, "fallback loop: %s" % " -> ".join(seen + [current]))
                    break
                seen.append(current)
