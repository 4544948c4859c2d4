// convex-test side of benchmarks/convex_test_bench.py.
//
// Reads the workload Python wrote (CONVEX_TEST_BENCH_WORKLOAD: the table's
// documents, every operation's arguments, the same seeds as the harness),
// loads the table into a convexTest() backend, answers the harness's
// verification questions, then times every operation through the public
// test API (t.mutation / t.query / t.action / t.run): a warm-up slice, then
// `reps` slices of the same calls Python makes. Writes µs per op per slice to
// CONVEX_TEST_BENCH_OUT. Not a correctness test: run it through the Python
// entry point, which compares the answers and renders the table.
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { convexTest } from "convex-test";
import { expect, test } from "vitest";
import { api } from "./convex/_generated/api.js";
import * as M from "./convex/messages.js";
import schema from "./convex/schema.js";

const modules = import.meta.glob("./convex/**/*.js");
const WORKLOAD = process.env.CONVEX_TEST_BENCH_WORKLOAD;
const OUT = process.env.CONVEX_TEST_BENCH_OUT;

// JSON has no bigint: tokens arrive as numbers and become int64 here, untimed.
const toMeta = (m) => ({ tokens: BigInt(m.tokens), model: m.model });
const toDoc = (d) => ({ ...d, meta: toMeta(d.meta) });
const toFields = (f) => ({ role: f.role, meta: toMeta(f.meta) });
const strip = (doc) => {
  if (doc === null) return null;
  const { _id, _creationTime, ...fields } = doc;
  return fields;
};
const plain = (value) =>
  JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v)));

async function walk(t, total) {
  let seen = 0;
  let cursor = null;
  while (seen < total) {
    const result = await t.query(api.messages.page_messages, { cursor });
    seen += result.page.length;
    if (result.isDone) break;
    cursor = result.continueCursor;
  }
  return seen;
}

// Store-independent arguments (as Python's Op.make) -> this store's (Op.bind).
function bind(key, args, state) {
  switch (key) {
    case "insert":
      return args.map(toDoc);
    case "patch":
      return args.map(([pos, f]) => ({ id: state.keys[pos], ...toFields(f) }));
    case "delete":
      return state.inserted.splice(0, args.length).map((id) => ({ id }));
    case "get":
      return args.map((pos) => ({ id: state.keys[pos] }));
    case "by_thread":
    case "latest":
      return args.map((threadId) => ({ threadId }));
    case "range":
      return args.map((r) => ({ role: r.role, lo: BigInt(r.lo), hi: BigInt(r.hi) }));
    case "search":
      return args.map((text) => ({ text }));
    case "action3":
      return args.map(([doc, f]) => ({ doc: toDoc(doc), ...toFields(f) }));
    default: // walk: the number of documents to page through
      return args;
  }
}

const CALL = {
  insert: (t, a) => t.mutation(api.messages.send, a),
  patch: (t, a) => t.mutation(api.messages.retag, a),
  delete: (t, a) => t.mutation(api.messages.remove, a),
  get: (t, a) => t.query(api.messages.get_message, a),
  by_thread: (t, a) => t.query(api.messages.thread_messages, a),
  range: (t, a) => t.query(api.messages.tokens_between, a),
  latest: (t, a) => t.query(api.messages.newest, a),
  walk: (t, total) => walk(t, total),
  search: (t, a) => t.query(api.messages.search_messages, a),
  action3: (t, a) => t.action(api.messages.three, a),
};

async function timed(call, t, bound) {
  globalThis.gc?.(); // --expose-gc (vitest.config.js): start each slice clean
  const out = [];
  const start = process.hrtime.bigint();
  for (const a of bound) out.push(await call(t, a));
  const ns = Number(process.hrtime.bigint() - start);
  return [ns / 1000 / Math.max(1, bound.length), out];
}

async function bulkInsert(t, docs, chunkSize) {
  const keys = [];
  for (let start = 0; start < docs.length; start += chunkSize) {
    const chunk = docs.slice(start, start + chunkSize);
    const ids = await t.run(async (ctx) => {
      const out = [];
      for (const d of chunk) out.push(await ctx.db.insert("messages", d));
      return out;
    });
    keys.push(...ids);
  }
  return keys;
}

async function answers(t, state, questions) {
  const pick = (pos) => ({ id: state.keys[pos] });
  return plain({
    get: await Promise.all(
      questions.get.map(async (p) => strip(await t.query(api.messages.get_message, pick(p)))),
    ),
    by_thread: await Promise.all(
      questions.by_thread.map(async (threadId) =>
        (await t.query(api.messages.thread_messages, { threadId })).map(strip),
      ),
    ),
    latest: await Promise.all(
      questions.latest.map(async (threadId) =>
        (await t.query(api.messages.newest, { threadId })).map(strip),
      ),
    ),
    range: await Promise.all(
      bind("range", questions.range, state).map(async (a) =>
        (await t.query(api.messages.tokens_between, a)).map(strip),
      ),
    ),
    walk: await walk(t, questions.walk),
    search: await Promise.all(
      questions.search.map(async (text) =>
        (await t.query(api.messages.search_messages, { text })).map((d) => d.content),
      ),
    ),
  });
}

function versions() {
  const version = (name) =>
    JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url)))
      .version;
  return {
    node: process.version,
    convex: version("convex"),
    "convex-test": version("convex-test"),
    vitest: version("vitest"),
    "@edge-runtime/vm": version("@edge-runtime/vm"),
  };
}

test("convex-test benchmark", async () => {
  expect(WORKLOAD, "run benchmarks/convex_test_bench.py").toBeTruthy();
  const w = JSON.parse(readFileSync(WORKLOAD, "utf8"));
  // The schema's literals and limits must be the workload's.
  expect(w.constants).toEqual({
    roles: M.ROLES,
    models: M.MODELS,
    eq_limit: M.EQ_LIMIT,
    latest_limit: M.LATEST_LIMIT,
    page_size: M.PAGE_SIZE,
    search_limit: M.SEARCH_LIMIT,
    bulk_chunk: w.constants.bulk_chunk,
  });
  const chunk = w.constants.bulk_chunk;

  const t = convexTest(schema, modules);
  const table = w.table.map(toDoc);
  const loadStart = process.hrtime.bigint();
  const state = { keys: await bulkInsert(t, table, chunk), inserted: [] };
  const loadSeconds = Number(process.hrtime.bigint() - loadStart) / 1e9;
  expect(state.keys.length).toBe(w.table.length);
  const verify = await answers(t, state, w.verify);

  const ops = {};
  for (const op of w.ops) {
    const call = CALL[op.key];
    const record = (out) => {
      if (op.key === "insert") state.inserted.push(...out);
    };
    const [, warm] = await timed(call, t, bind(op.key, op.warmup, state));
    record(warm);
    const samples = [];
    for (const args of op.reps) {
      const [perCall, out] = await timed(call, t, bind(op.key, args, state));
      record(out);
      samples.push(perCall);
    }
    ops[op.key] = { samples, iters: op.reps[0].length };
    console.log(`  ${op.key}: ${samples.map((s) => s.toFixed(1)).join(" ")} µs`);
  }

  const bulkDocs = w.bulk.docs.map(toDoc);
  const bulk = [];
  for (let rep = 0; rep < w.bulk.reps; rep++) {
    const fresh = convexTest(schema, modules);
    globalThis.gc?.();
    const start = process.hrtime.bigint();
    const keys = await bulkInsert(fresh, bulkDocs, chunk);
    const ns = Number(process.hrtime.bigint() - start);
    expect(keys.length).toBe(bulkDocs.length);
    bulk.push(ns / 1000 / bulkDocs.length);
  }
  console.log(`  bulk: ${bulk.map((s) => s.toFixed(1)).join(" ")} µs/doc`);

  writeFileSync(
    OUT,
    JSON.stringify(
      {
        versions: versions(),
        gc_exposed: typeof globalThis.gc === "function",
        load_seconds: loadSeconds,
        verify,
        ops,
        bulk: { samples: bulk, docs: bulkDocs.length },
      },
      null,
      1,
    ),
  );
});
