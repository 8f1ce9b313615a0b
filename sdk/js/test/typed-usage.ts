// Compiled by `npm run check` (tsc, no output): the SDK's types as a user meets them.
import { GoCastClient, GoCastError, type Listener, type Stats } from "gocast-client";

async function example(): Promise<void> {
  const client = new GoCastClient("http://localhost:8000", { apiKey: "gck_..." });
  const stats: Stats = await client.getStats();
  const total: number = stats.total_listeners;
  const first: string | undefined = stats.mounts[0]?.path;
  await client.mounts.updateMetadata("/live", { title: "Now Playing: Great Song" });
  for await (const listener of client.mounts.getListeners("/live")) {
    const seen: Listener = listener;
    console.log(`${seen.ip} - connected ${seen.duration}s`);
  }
  const key = await client.keys.create("ci", ["read_stats"]);
  const secret: string = key.key;
  const audio = client.audio("/live", { format: "pcm", rate: 48000 });
  audio.on("metadata", (message) => console.log(message.song));
  try {
    await client.mounts.get("/nothing");
  } catch (error) {
    if (error instanceof GoCastError && error.code === "not_found") {
      console.log(total, first, secret);
    }
  }
}

void example;
