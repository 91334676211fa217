// An independent Foxglove WebSocket client (npm @foxglove/ws-protocol, not project code): connects to
// the robot's Foxglove server, subscribes to every advertised channel for SECONDS, decodes each
// message with the schema the server advertised (@foxglove/rosmsg + @foxglove/rosmsg2-serialization,
// as Foxglove Studio does for `cdr`/`ros2msg` channels) and writes the last message of each channel
// (and the last transform to each frame from /tf and /tf_static) to OUT.json. Binary fields (map cells, JPEG bytes) are
// written as base64.
//
//     node docs/foxglove_client/snapshot.mjs PORT SECONDS OUT.json
import wsProtocol from "@foxglove/ws-protocol";
import rosmsg from "@foxglove/rosmsg";
import serialization from "@foxglove/rosmsg2-serialization";
import WebSocket from "ws";
import { writeFileSync } from "node:fs";

const { FoxgloveClient } = wsProtocol; // CommonJS packages
const { parse } = rosmsg;
const { MessageReader } = serialization;

const [port, seconds, out] = [process.argv[2], Number(process.argv[3] ?? 8), process.argv[4] ?? "snapshot.json"];
// foxglove-sdk 0.30 accepts only the successor subprotocol `foxglove.sdk.v1`, whose messages this
// client (written for foxglove.websocket.v1) parses unchanged for what it uses here: advertise,
// subscribe and message data.
const ws = new WebSocket(`ws://127.0.0.1:${port}`, ["foxglove.sdk.v1", FoxgloveClient.SUPPORTED_SUBPROTOCOL]);
const client = new FoxgloveClient({ ws });
const channels = new Map();
const last = {};
const counts = {};
const transforms = {}; // child frame -> the last transform to it (from /tf and /tf_static)
let serverName = "";

function plain(value) {
  if (value instanceof Uint8Array || value instanceof Int8Array) return { base64: Buffer.from(value).toString("base64") };
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return Array.from(value, plain);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

client.on("serverInfo", (info) => { serverName = info.name; });
client.on("advertise", (advertised) => {
  for (const channel of advertised) {
    if (channel.encoding !== "cdr" || channel.schemaEncoding !== "ros2msg") continue;
    const reader = new MessageReader(parse(channel.schema, { ros2: true }));
    const subscription = client.subscribe(channel.id);
    channels.set(subscription, { channel, reader });
  }
});
client.on("message", ({ subscriptionId, data }) => {
  const entry = channels.get(subscriptionId);
  if (!entry) return;
  const topic = entry.channel.topic;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  counts[topic] = (counts[topic] ?? 0) + 1;
  const message = plain(entry.reader.readMessage(bytes));
  last[topic] = { schema: entry.channel.schemaName, message };
  if (entry.channel.schemaName === "tf2_msgs/msg/TFMessage") {
    for (const t of message.transforms) transforms[t.child_frame_id] = t;
  }
});
client.on("error", (error) => { console.error(`client error: ${error.message ?? error}`); });
client.on("open", () => { console.log(`connected: subprotocol ${ws.protocol}`); });

setTimeout(() => {
  const topics = [...channels.values()].map((e) => e.channel).sort((a, b) => a.topic.localeCompare(b.topic));
  console.log(`serverInfo: name=${JSON.stringify(serverName)}`);
  for (const c of topics) console.log(`${c.topic.padEnd(32)} ${c.schemaName.padEnd(44)} ${String(counts[c.topic] ?? 0).padStart(5)}`);
  writeFileSync(out, JSON.stringify({ server: serverName, counts, last, transforms }));
  client.close();
  process.exit(0);
}, seconds * 1000);
