// Types of gocast-client. What the API answers comes from api.d.ts, generated
// from GoCast's /api/v1/openapi.json by openapi-typescript (npm run types).
import type { operations } from "./api.js";

type Answer<Op extends keyof operations, Status extends number = 200> =
  operations[Op]["responses"] extends { [S in Status]: { content: { "application/json": { data: infer D } } } }
    ? D : never;
type Body<Op extends keyof operations> =
  operations[Op] extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;

export type Stats = Answer<"get_stats">;
export type ServerStatus = Answer<"get_server_status">;
export type Mount = Answer<"get_mounts_mount">;
export type MountConfig = Body<"post_mounts"> extends { config?: infer C } ? C : never;
export type Source = Answer<"get_mounts_mount_source">;
export type Listener = Answer<"get_mounts_mount_listeners_id">;
export type ApiKey = Answer<"get_keys"> extends Array<infer K> ? K : never;
export type CreatedKey = Answer<"post_keys", 201>;
export type Recording = Answer<"get_recordings"> extends Array<infer R> ? R : never;
export type Cluster = Answer<"get_cluster">;
export type Route = Answer<"get_cluster_route">;
export type Metadata = Answer<"post_mounts_mount_metadata">;

/** An error answer of the API: its code is the one the Python SDK gives ("not_found", "forbidden"...). */
export class GoCastError extends Error {
  status: number;
  code: string;
  details: unknown;
  apiMessage: string;
  constructor(status: number, code: string, message: string, details?: unknown);
}

/** The server could not be reached (code "connection_failed", status 0). */
export class ConnectionFailed extends GoCastError {
  url: string;
  constructor(url: string, reason: string);
}

export function mountSegment(mount: string): string;

export interface ClientOptions {
  apiKey?: string;
  admin?: [string, string];
  /** Milliseconds per call (default 10,000). */
  timeout?: number;
  fetch?: typeof fetch;
}

export interface AudioOptions {
  format?: "source" | "pcm" | "metadata";
  rate?: number;
  channels?: 1 | 2;
  /** A listener token, sent as the subprotocol gocast.token.<token>. */
  token?: string;
  /** Reconnect and resume after a drop (default true). */
  reconnect?: boolean;
}

export class GoCastClient {
  constructor(url: string, options?: ClientOptions);
  url: string;
  mounts: Mounts;
  keys: Keys;
  recordings: Recordings;
  request(method: string, path: string, options?: { body?: unknown; query?: Record<string, unknown>;
    headers?: Record<string, string> }): Promise<Response>;
  call<T = unknown>(method: string, path: string, options?: { body?: unknown; query?: Record<string, unknown> }):
    Promise<T>;
  serverStatus(): Promise<ServerStatus>;
  serverConfig(): Promise<Answer<"get_server_config">>;
  reload(): Promise<Answer<"post_server_reload">>;
  cluster(): Promise<Cluster>;
  clusterRoute(ip: string, mount: string, region?: string): Promise<Route>;
  getStats(): Promise<Stats>;
  getStatsHistory(range?: "hour" | "day"): Promise<Answer<"get_stats_history">>;
  getGeoStats(): Promise<Answer<"get_stats_geo">>;
  socketUrl(path: string): string;
  liveStats(options?: { adminRoot?: string; listenerEvents?: boolean }): LiveStats;
  audio(mount: string, options?: AudioOptions): AudioStream;
}

export interface Mounts {
  list(): Promise<Mount[]>;
  get(mount: string): Promise<Mount>;
  create(mount: string, config?: MountConfig): Promise<Mount>;
  update(mount: string, config?: MountConfig): Promise<Mount>;
  delete(mount: string): Promise<unknown>;
  updateMetadata(mount: string, metadata: { title?: string; artist?: string; song?: string; url?: string }):
    Promise<Metadata>;
  getListeners(mount: string, pageSize?: number): AsyncGenerator<Listener>;
  getListener(mount: string, id: string | number): Promise<Listener>;
  kick(mount: string, id: string | number): Promise<unknown>;
  source(mount: string): Promise<Source>;
  killSource(mount: string): Promise<unknown>;
}

export interface Keys {
  list(): Promise<ApiKey[]>;
  create(name: string, permissions: string[], options?: { expires?: number; description?: string }):
    Promise<CreatedKey>;
  revoke(id: string): Promise<unknown>;
}

export interface Recordings {
  list(mount?: string): Promise<Recording[]>;
  start(mount: string): Promise<unknown>;
  stop(mount: string): Promise<unknown>;
  delete(id: string): Promise<unknown>;
  download(id: string): Promise<{ bytes: Uint8Array; contentType: string | null }>;
}

declare class Emitter {
  on(name: string, handler: (...args: any[]) => void): this;
  off(name: string, handler: (...args: any[]) => void): this;
  next<T = unknown>(name: string, timeout?: number): Promise<T>;
}

export interface Hello {
  type: "hello";
  mount: string;
  codec: string | null;
  content_type: string;
  sample_rate: number | null;
  channels: number | null;
  bitrate: number | null;
  stream: string;
  seq: number;
  resumed: boolean;
  listener: number;
  header_bytes: number;
}

export interface NowPlaying {
  type: "metadata";
  mount: string;
  title: string | null;
  artist: string | null;
  song: string | null;
  url: string | null;
  artwork: string | null;
}

export interface AudioFrame {
  seq: number;
  flags: number;
  /** Whole codec frames, or 16-bit samples with format "pcm". */
  data: Uint8Array | Int16Array;
}

/** Events: "snapshot", "delta", "open", "close", "error". */
export class LiveStats extends Emitter {
  ready: Promise<LiveStats>;
  closed: boolean;
  close(): void;
}

/** Events: "hello" (Hello), "metadata" (NowPlaying), "audio" (AudioFrame), "open", "close", "error". */
export class AudioStream extends Emitter {
  static FLAG_HEADERS: 1;
  static FLAG_START: 2;
  static FLAG_BURST: 4;
  ready: Promise<AudioStream>;
  hello: Hello | null;
  metadata: NowPlaying | null;
  seq: number | null;
  stream: string | null;
  connections: number;
  drop(): void;
  close(): void;
}

/** Web Audio playback of format "pcm". Events: "metadata". */
export class PcmPlayer extends Emitter {
  constructor(client: GoCastClient, mount: string, options?: { rate?: number; channels?: 1 | 2;
    latency?: number; context?: AudioContext; token?: string });
  nowPlaying: NowPlaying | null;
  blocks: number;
  volume: number;
  context: AudioContext | null;
  start(): Promise<PcmPlayer>;
  stop(): Promise<void>;
}
