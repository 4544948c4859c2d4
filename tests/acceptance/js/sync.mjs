// Drives a live `one-store serve` with the real npm ConvexClient (the WebSocket
// sync protocol) under Node, one JSON command per stdin line; it prints one JSON
// line per answer and per event. tests/acceptance/test_sync_clients.py drives it.
// Usage: node sync.mjs <url>
//
// Commands: {"id", "op": "subscribe", "sub", "path", "args"}, {"id", "op":
// "unsubscribe", "sub"}, {"id", "op": "mutation" | "action" | "query", "path",
// "args"}, {"id", "op": "close"}. Events: {"event": "update", "sub", "value"},
// {"event": "error", "sub", "message"}. A mutation's answer carries "seen": the
// latest value of every subscription at the moment its promise resolved.
import { ConvexClient } from "convex/browser";
import { ConvexError } from "convex/values";
import readline from "node:readline";

const [url] = process.argv.slice(2);
const client = new ConvexClient(url, { logger: false });
const subs = {};
const latest = {};

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function describe(value) {
  if (typeof value === "bigint") return { bigint: value.toString() };
  if (value instanceof ArrayBuffer) return { bytes: [...new Uint8Array(value)] };
  if (Array.isArray(value)) return value.map(describe);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, describe(v)]));
  }
  return value === undefined ? null : value;
}

function failure(e) {
  return {
    error: String(e.message),
    convexError: e instanceof ConvexError,
    data: e instanceof ConvexError ? describe(e.data) : null,
  };
}

async function run(cmd) {
  switch (cmd.op) {
    case "subscribe":
      subs[cmd.sub] = client.onUpdate(
        cmd.path,
        cmd.args,
        (value) => {
          latest[cmd.sub] = describe(value);
          out({ event: "update", sub: cmd.sub, value: describe(value) });
        },
        (e) => out({ event: "error", sub: cmd.sub, message: String(e.message) }),
      );
      return { ok: true };
    case "unsubscribe":
      subs[cmd.sub]();
      delete subs[cmd.sub];
      return { ok: true };
    case "mutation": {
      const value = await client.mutation(cmd.path, cmd.args);
      return { ok: describe(value), seen: { ...latest } };
    }
    case "action":
      return { ok: describe(await client.action(cmd.path, cmd.args)) };
    case "query":
      return { ok: describe(await client.query(cmd.path, cmd.args)) };
    case "close":
      await client.close();
      return { ok: true };
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const cmd = JSON.parse(line);
  run(cmd).then(
    (answer) => {
      out({ id: cmd.id, ...answer });
      if (cmd.op === "close") process.exit(0);
    },
    (e) => out({ id: cmd.id, ...failure(e) }),
  );
});
