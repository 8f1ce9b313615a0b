// The SDK against a live GoCast (node --test): GOCAST_URL names it, with the
// admin password hackme and an MP3 source on /live (tests/integration/test_sdk_js.py
// starts both, and runs this).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { AudioStream, ConnectionFailed, GoCastClient, GoCastError } from "gocast-client";

const URL = process.env.GOCAST_URL;
const admin = new GoCastClient(URL, { admin: ["admin", process.env.GOCAST_ADMIN_PASSWORD ?? "hackme"] });

async function eventually(check, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error("timed out waiting for " + what);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("the REST API", () => {
  let key;
  let client;
  let listening;

  before(async () => {
    key = await admin.keys.create("sdk-js", ["read_stats", "read_mounts", "write_metadata", "manage_listeners"]);
    client = new GoCastClient(URL, { apiKey: key.key });
    listening = client.audio("/live");  // a listener to find
    await listening.next("audio");
  });

  after(async () => {
    listening.close();
    await admin.keys.revoke(key.id).catch(() => {});
  });

  test("the roadmap's example", async () => {
    const stats = await client.getStats();
    assert.equal(typeof stats.total_listeners, "number");
    assert.ok(stats.total_listeners >= 1);
    const answer = await client.mounts.updateMetadata("/live", { title: "Now Playing: Great Song" });
    assert.ok(answer);
    assert.equal((await client.mounts.get("/live")).title, "Now Playing: Great Song");
    const listeners = [];
    for await (const listener of client.mounts.getListeners("/live", 1)) {
      listeners.push(listener);
    }
    assert.ok(listeners.length >= 1);
    assert.ok(listeners.every((l) => typeof l.ip === "string" && typeof l.duration === "number"));
    assert.ok(listeners.some((l) => String(l.id) === String(listening.hello.listener)));
  });

  test("mounts, sources, status, keys and recordings", async () => {
    const mounts = await client.mounts.list();
    assert.ok(mounts.some((m) => m.path === "/live"));
    assert.equal((await client.mounts.source("/live")).content_type, "audio/mpeg");
    assert.equal(typeof (await client.serverStatus()).version, "string");
    assert.ok((await admin.keys.list()).some((k) => k.id === key.id));
    assert.ok(Array.isArray(await admin.recordings.list()));
  });

  test("errors carry the API's codes", async () => {
    await assert.rejects(client.mounts.get("/nothing"), (error) =>
      error instanceof GoCastError && error.code === "not_found" && error.status === 404);
    await assert.rejects(client.keys.list(), (error) => error.code === "forbidden" && error.status === 403);
    const stranger = new GoCastClient(URL, { apiKey: "gck_not_a_key" });
    await assert.rejects(stranger.getStats(), (error) => error.code === "unauthorized" && error.status === 401);
    const nowhere = new GoCastClient("http://127.0.0.1:9", { timeout: 2000 });
    await assert.rejects(nowhere.getStats(), (error) =>
      error instanceof ConnectionFailed && error.code === "connection_failed" && error.status === 0);
  });

  test("a revoked key is refused", async () => {
    const made = await admin.keys.create("short-lived", ["read_stats"]);
    const user = new GoCastClient(URL, { apiKey: made.key });
    assert.equal(typeof (await user.getStats()).total_listeners, "number");
    await admin.keys.revoke(made.id);
    await assert.rejects(user.getStats(), (error) => error.code === "unauthorized");
  });
});

describe("the live stats stream", () => {
  test("a snapshot, then deltas", async () => {
    const live = admin.liveStats();
    try {
      const snapshot = await live.next("snapshot");
      assert.ok(snapshot.mounts.some((m) => m.path === "/live" && m.live));
      const delta = await live.next("delta", 5000);
      assert.equal(typeof delta.server.listeners, "number");
    } finally {
      live.close();
    }
  });
});

describe("WebSocket audio", () => {
  test("hello, metadata and numbered MP3 chunks; a drop resumes without a gap", async () => {
    const stream = admin.audio("/live");
    try {
      const hello = await stream.next("hello");
      assert.equal(hello.codec, "mp3");
      assert.equal(hello.content_type, "audio/mpeg");
      const seqs = [];
      stream.on("audio", ({ seq, data }) => {
        assert.ok(data instanceof Uint8Array && data.length > 0);
        seqs.push(seq);
      });
      await eventually(() => seqs.length >= 8, "8 chunks");
      const changed = Date.now();
      const titled = stream.next("metadata", 5000);
      await admin.mounts.updateMetadata("/live", { title: "Tune", artist: "Band" });
      const metadata = await titled;
      assert.equal(metadata.song, "Band - Tune");
      assert.ok(Date.now() - changed < 2000);

      stream.drop();
      const resumed = await stream.next("hello", 15000);
      assert.equal(resumed.resumed, true);
      await eventually(() => stream.connections === 2 && seqs.length >= 16, "chunks after the reconnect", 15000);
      for (let i = 1; i < seqs.length; i++) {
        assert.equal(seqs[i], seqs[i - 1] + 1, "chunk " + seqs[i] + " after " + seqs[i - 1]);
      }
    } finally {
      stream.close();
    }
  });

  test("PCM as 16-bit samples", async () => {
    const stream = admin.audio("/live", { format: "pcm", rate: 22050, channels: 1 });
    try {
      const hello = await stream.next("hello");
      assert.deepEqual([hello.codec, hello.sample_rate, hello.channels], ["pcm_s16le", 22050, 1]);
      const frame = await stream.next("audio", 15000);
      assert.ok(frame.data instanceof Int16Array);
      assert.equal(frame.data.length, 2205);  // 0.1 s a block
      assert.ok(frame.flags & AudioStream.FLAG_START);
    } finally {
      stream.close();
    }
  });
});
