// GoCast's JavaScript SDK: the REST API (/api/v1), the live stats stream
// (<admin_root>/ws/stats) and WebSocket audio (/ws/<mount>), for Node 18+
// and browsers. One ES module, no build step; types in ../types.
//
//   import { GoCastClient } from "gocast-client";
//   const client = new GoCastClient("http://localhost:8000", { apiKey: "gck_..." });
//   const stats = await client.getStats();
//   console.log(`Total listeners: ${stats.total_listeners}`);
//
// Every call resolves to the API's `data` and rejects with a GoCastError
// carrying the API's error code (the same codes as the Python SDK);
// ConnectionFailed (code "connection_failed") when the server cannot be
// reached.

export class GoCastError extends Error {
  constructor(status, code, message, details = null) {
    super(`${message} (${code}, HTTP ${status})`);
    this.name = "GoCastError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.apiMessage = message;
  }
}

export class ConnectionFailed extends GoCastError {
  constructor(url, reason) {
    super(0, "connection_failed", `cannot reach GoCast at ${url}: ${reason}`);
    this.name = "ConnectionFailed";
    this.url = url;
  }
}

/** "/live" or "live" as one path segment: the name without its slash, other slashes encoded. */
export function mountSegment(mount) {
  return encodeURIComponent(String(mount).replace(/^\/+|\/+$/g, ""));
}

function mountPath(mount) {
  return "/" + String(mount).replace(/^\/+/, "");
}

function base64(text) {
  if (typeof btoa === "function") {
    return btoa(unescape(encodeURIComponent(text)));
  }
  return Buffer.from(text, "utf-8").toString("base64");
}

/** The WebSocket class: the platform's (browsers, Node 22+), else the `ws` package's. */
async function webSocketClass() {
  if (typeof globalThis.WebSocket === "function") {
    return globalThis.WebSocket;
  }
  const module = await import("ws");
  return module.default;
}

export class GoCastClient {
  /**
   * @param {string} url the server, such as "http://localhost:8000"
   * @param {{apiKey?: string, admin?: [string, string], timeout?: number, fetch?: typeof fetch}} options
   */
  constructor(url, options = {}) {
    this.url = String(url).replace(/\/+$/, "");
    this.timeout = options.timeout ?? 10000;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.apiKey = options.apiKey ?? null;
    this.headers = { Accept: "application/json" };
    if (options.apiKey) {
      this.headers.Authorization = "Bearer " + options.apiKey;
    } else if (options.admin) {
      this.headers.Authorization = "Basic " + base64(options.admin[0] + ":" + options.admin[1]);
    }
    this.mounts = new Mounts(this);
    this.keys = new Keys(this);
    this.recordings = new Recordings(this);
  }

  /** The HTTP response of one API call; rejects with GoCastError on an error answer. */
  async request(method, path, { body, query, headers } = {}) {
    let url = this.url + "/api/v1" + path;
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) {
        params.set(name, String(value));
      }
    }
    if ([...params].length) {
      url += "?" + params.toString();
    }
    const sent = { ...this.headers, ...(headers ?? {}) };
    if (body !== undefined) {
      sent["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await this.fetch(url, {
        method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeout),
      });
    } catch (error) {
      throw new ConnectionFailed(this.url, error?.cause?.code ?? error?.message ?? String(error));
    }
    if (!response.ok) {
      const raw = await response.text();
      let error;
      try {
        error = JSON.parse(raw).error;
      } catch (_) {
        error = null;
      }
      if (!error || typeof error !== "object") {
        throw new GoCastError(response.status, "http_error",
          `${url} answered HTTP ${response.status}: ${raw.slice(0, 200)}`);
      }
      throw new GoCastError(response.status, error.code ?? "", error.message ?? "", error.details ?? null);
    }
    return response;
  }

  /** One API call: its `data` (and, with `withMeta`, `{data, meta}`). */
  async call(method, path, options = {}) {
    const response = await this.request(method, path, options);
    let document;
    try {
      document = await response.json();
    } catch (error) {
      throw new ConnectionFailed(this.url, "not a JSON answer: " + error.message);
    }
    return options.withMeta ? { data: document.data, meta: document.meta ?? {} } : document.data;
  }

  // Server

  serverStatus() { return this.call("GET", "/server/status"); }
  serverConfig() { return this.call("GET", "/server/config"); }
  reload() { return this.call("POST", "/server/reload"); }
  cluster() { return this.call("GET", "/cluster"); }
  clusterRoute(ip, mount, region) {
    return this.call("GET", "/cluster/route", { query: { ip, mount, region } });
  }
  getStats() { return this.call("GET", "/stats"); }
  getStatsHistory(range = "hour") { return this.call("GET", "/stats/history", { query: { range } }); }
  getGeoStats() { return this.call("GET", "/stats/geo"); }

  // Streams over WebSockets

  /** ws(s)://host + path, from the client's http(s) URL. */
  socketUrl(path) {
    return this.url.replace(/^http/, "ws") + path;
  }

  /**
   * The live stats stream (what the dashboard reads): a snapshot, then deltas.
   * @param {{adminRoot?: string, listenerEvents?: boolean}} options
   */
  liveStats(options = {}) {
    return new LiveStats(this, options);
  }

  /**
   * A mount's audio and now-playing over one WebSocket, reconnecting and
   * resuming without a gap when it can (docs/websocket.md).
   * @param {string} mount
   * @param {{format?: "source"|"pcm"|"metadata", rate?: number, channels?: number, token?: string,
   *          reconnect?: boolean}} options
   */
  audio(mount, options = {}) {
    return new AudioStream(this, mount, options);
  }
}

class Mounts {
  constructor(client) { this.client = client; }
  list() { return this.client.call("GET", "/mounts"); }
  get(mount) { return this.client.call("GET", "/mounts/" + mountSegment(mount)); }
  create(mount, config = {}) { return this.client.call("POST", "/mounts", { body: { name: mount, config } }); }
  update(mount, config = {}) {
    return this.client.call("PUT", "/mounts/" + mountSegment(mount), { body: { config } });
  }
  delete(mount) { return this.client.call("DELETE", "/mounts/" + mountSegment(mount)); }
  updateMetadata(mount, { title, artist, song, url } = {}) {
    const body = Object.fromEntries(Object.entries({ title, artist, song, url }).filter(([, v]) => v));
    return this.client.call("POST", `/mounts/${mountSegment(mount)}/metadata`, { body });
  }
  /** Every listener of the mount, a page at a time: `for await (const listener of ...)`. */
  async *getListeners(mount, pageSize = 100) {
    let cursor;
    do {
      const { data, meta } = await this.client.call("GET", `/mounts/${mountSegment(mount)}/listeners`,
        { query: { limit: pageSize, cursor }, withMeta: true });
      yield* data;
      cursor = meta.pagination?.next_cursor;
    } while (cursor);
  }
  getListener(mount, id) {
    return this.client.call("GET", `/mounts/${mountSegment(mount)}/listeners/${encodeURIComponent(id)}`);
  }
  kick(mount, id) {
    return this.client.call("DELETE", `/mounts/${mountSegment(mount)}/listeners/${encodeURIComponent(id)}`);
  }
  source(mount) { return this.client.call("GET", `/mounts/${mountSegment(mount)}/source`); }
  killSource(mount) { return this.client.call("DELETE", `/mounts/${mountSegment(mount)}/source`); }
}

class Keys {
  constructor(client) { this.client = client; }
  list() { return this.client.call("GET", "/keys"); }
  create(name, permissions, { expires, description = "" } = {}) {
    const body = { name, permissions, description };
    if (expires !== undefined) {
      body.expires = expires;
    }
    return this.client.call("POST", "/keys", { body });
  }
  revoke(id) { return this.client.call("DELETE", "/keys/" + encodeURIComponent(id)); }
}

class Recordings {
  constructor(client) { this.client = client; }
  list(mount) { return this.client.call("GET", "/recordings", { query: { mount, limit: 1000 } }); }
  start(mount) { return this.client.call("POST", "/recordings/start", { body: { mount } }); }
  stop(mount) { return this.client.call("POST", "/recordings/stop", { body: { mount } }); }
  delete(id) { return this.client.call("DELETE", "/recordings/" + encodeURIComponent(id)); }
  /** A closed recording's bytes (a Uint8Array), and its content type. */
  async download(id) {
    const response = await this.client.request("GET", "/recordings/" + encodeURIComponent(id));
    return { bytes: new Uint8Array(await response.arrayBuffer()),
             contentType: response.headers.get("content-type") };
  }
}

/** Handlers by event name, for the two streams below. */
class Emitter {
  constructor() { this.handlers = new Map(); }
  on(name, handler) {
    if (!this.handlers.has(name)) {
      this.handlers.set(name, new Set());
    }
    this.handlers.get(name).add(handler);
    return this;
  }
  off(name, handler) {
    this.handlers.get(name)?.delete(handler);
    return this;
  }
  emit(name, ...args) {
    for (const handler of this.handlers.get(name) ?? []) {
      handler(...args);
    }
  }
  /** The next `name` event, as a promise (rejects after `timeout` ms). */
  next(name, timeout = 10000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.off(name, handler); reject(new Error(`no ${name} in ${timeout} ms`)); },
        timeout);
      const handler = (...args) => { clearTimeout(timer); this.off(name, handler); resolve(args[0]); };
      this.on(name, handler);
    });
  }
}

/** Open a WebSocket; in Node, credentials go in headers (browsers cannot send them). */
async function openSocket(url, headers, protocols) {
  const WebSocketClass = await webSocketClass();
  const nodeWs = WebSocketClass !== globalThis.WebSocket;
  const socket = nodeWs ? new WebSocketClass(url, protocols, { headers }) : new WebSocketClass(url, protocols);
  socket.binaryType = "arraybuffer";
  return socket;
}

/** The live stats stream: "snapshot" and "delta" events, "close" when it ends. */
export class LiveStats extends Emitter {
  constructor(client, { adminRoot = "/admin", listenerEvents = false } = {}) {
    super();
    this.client = client;
    this.closed = false;
    const query = client.apiKey && typeof globalThis.WebSocket === "function" ? "?key=" + client.apiKey : "";
    this.ready = openSocket(client.socketUrl(adminRoot + "/ws/stats" + query), client.headers).then((socket) => {
      this.socket = socket;
      socket.onopen = () => {
        if (listenerEvents) {
          socket.send(JSON.stringify({ listener_events: true }));
        }
        this.emit("open");
      };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        this.emit(message.type, message);
      };
      socket.onclose = (event) => { this.closed = true; this.emit("close", event.code, event.reason); };
      socket.onerror = (error) => this.emit("error", error);
      return this;
    });
  }
  close() {
    this.ready.then(() => this.socket.close());
  }
}

const HEADER_BYTES = 8;

/**
 * A mount's stream over /ws/<mount>: "hello", "metadata" and "audio"
 * events (audio: `{seq, flags, data}`, data a Uint8Array; Int16Array of
 * samples with format "pcm"). On a drop it reconnects (1, 2, 4... 30 s
 * apart) with `since` and `stream`, so no chunk is lost while the server
 * still has it.
 */
export class AudioStream extends Emitter {
  static FLAG_HEADERS = 1;
  static FLAG_START = 2;
  static FLAG_BURST = 4;

  constructor(client, mount, options = {}) {
    super();
    this.client = client;
    this.mount = mountPath(mount);
    this.options = options;
    this.reconnect = options.reconnect ?? true;
    this.stream = null;
    this.seq = null;
    this.hello = null;
    this.metadata = null;
    this.stopped = false;
    this.failures = 0;
    this.connections = 0;
    this.ready = this.connect();
  }

  url() {
    const params = new URLSearchParams();
    const { format, rate, channels } = this.options;
    if (format && format !== "source") params.set("format", format);
    if (rate) params.set("rate", String(rate));
    if (channels) params.set("channels", String(channels));
    if (this.seq !== null && this.stream) {
      params.set("since", String(this.seq));
      params.set("stream", this.stream);
    }
    const query = params.toString();
    return this.client.socketUrl("/ws" + this.mount) + (query ? "?" + query : "");
  }

  async connect() {
    const protocols = ["gocast.audio"];
    if (this.options.token) {
      protocols.push("gocast.token." + this.options.token);
    }
    const socket = await openSocket(this.url(), this.client.headers, protocols);
    this.socket = socket;
    socket.onopen = () => { this.failures = 0; this.connections += 1; this.emit("open"); };
    socket.onmessage = (event) => this.received(event.data);
    socket.onerror = (error) => this.emit("error", error);
    socket.onclose = (event) => {
      this.emit("close", event.code, event.reason);
      if (this.stopped || !this.reconnect) {
        return;
      }
      this.failures += 1;
      const delay = Math.min(2 ** (this.failures - 1), 30) * 1000;
      this.retry = setTimeout(() => { this.ready = this.connect(); }, delay);
    };
    return this;
  }

  received(data) {
    if (typeof data === "string") {
      const message = JSON.parse(data);
      if (message.type === "hello") {
        this.hello = message;
        this.stream = message.stream;
        if (!message.resumed && message.seq !== undefined) {
          this.seq = message.seq;
        }
      } else if (message.type === "metadata") {
        this.metadata = message;
      }
      this.emit(message.type, message);
      return;
    }
    const bytes = new Uint8Array(data instanceof ArrayBuffer ? data : data.buffer.slice(
      data.byteOffset, data.byteOffset + data.byteLength));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const seq = view.getUint32(0);
    const flags = view.getUint8(4);
    const payload = bytes.subarray(HEADER_BYTES);
    this.seq = seq;
    const audio = this.hello?.codec === "pcm_s16le"
      ? new Int16Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength))
      : payload;
    this.emit("audio", { seq, flags, data: audio });
  }

  /** Drop the connection as a network would (it reconnects and resumes): for tests and "retry now". */
  drop() {
    this.socket?.close(4000, "dropped by the client");
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retry);
    this.socket?.close(1000, "closed by the client");
  }
}

/**
 * Plays a mount in the browser through the Web Audio API, from
 * /ws/<mount>?format=pcm: each block of samples is scheduled after the
 * last, a little ahead of the clock so a late block does not click.
 * `nowPlaying` follows the metadata; "metadata" events too.
 */
export class PcmPlayer extends Emitter {
  constructor(client, mount, { rate = 48000, channels, latency = 0.3, context, token } = {}) {
    super();
    this.client = client;
    this.mount = mount;
    this.rate = rate;
    this.channels = channels;
    this.latency = latency;
    this.context = context ?? null;
    this.token = token;
    this.scheduled = 0;
    this.blocks = 0;
    this.nowPlaying = null;
    this.stream = null;
  }

  async start() {
    const AudioContextClass = globalThis.AudioContext ?? globalThis.webkitAudioContext;
    this.context = this.context ?? new AudioContextClass({ sampleRate: this.rate });
    this.gain = this.context.createGain();
    this.gain.connect(this.context.destination);
    await this.context.resume();
    this.stream = this.client.audio(this.mount, { format: "pcm", rate: this.rate, channels: this.channels,
                                                  token: this.token });
    this.stream.on("metadata", (message) => { this.nowPlaying = message; this.emit("metadata", message); });
    this.stream.on("audio", ({ flags, data }) => this.play(data, flags));
    await this.stream.ready;
    return this;
  }

  play(samples, flags) {
    const channels = this.stream.hello?.channels ?? 2;
    const rate = this.stream.hello?.sample_rate ?? this.rate;
    const frames = Math.floor(samples.length / channels);
    if (!frames) {
      return;
    }
    const buffer = this.context.createBuffer(channels, frames, rate);
    for (let c = 0; c < channels; c++) {
      const out = buffer.getChannelData(c);
      for (let i = 0; i < frames; i++) {
        out[i] = samples[i * channels + c] / 32768;
      }
    }
    const now = this.context.currentTime;
    if (this.scheduled < now || (flags & AudioStream.FLAG_START)) {
      this.scheduled = Math.max(this.scheduled, now + this.latency);  // start, or start again after a gap
    }
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.gain);
    source.start(this.scheduled);
    this.scheduled += buffer.duration;
    this.blocks += 1;
  }

  set volume(value) { this.gain.gain.value = value; }
  get volume() { return this.gain.gain.value; }

  async stop() {
    this.stream?.close();
    await this.context?.close();
  }
}
