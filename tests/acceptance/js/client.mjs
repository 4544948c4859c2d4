// Drives a live `one-store serve` with the real npm ConvexHttpClient and prints
// what it observed as one JSON object; tests/acceptance/test_real_clients.py
// asserts on it. Usage: node client.mjs <scenario> <url>
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { ConvexError } from "convex/values";

const [scenario, url] = process.argv.slice(2);
// The client logs log lines through console; keep stdout for the JSON result.
const client = new ConvexHttpClient(url, { logger: false });

// bigint and ArrayBuffer are not JSON: describe them so Python can check them.
function describe(value) {
  if (typeof value === "bigint") return { bigint: value.toString() };
  if (value instanceof ArrayBuffer) return { bytes: [...new Uint8Array(value)] };
  if (typeof value === "number") {
    if (Number.isNaN(value)) return { number: "NaN" };
    if (Object.is(value, -0)) return { number: "-0" };
    if (!Number.isFinite(value)) return { number: String(value) };
    return value;
  }
  if (Array.isArray(value)) return value.map(describe);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, describe(v)]));
  }
  return value;
}

async function failure(promise) {
  try {
    return { ok: describe(await promise) };
  } catch (e) {
    return {
      convexError: e instanceof ConvexError,
      message: String(e.message),
      data: e instanceof ConvexError ? describe(e.data) : null,
    };
  }
}

async function notes() {
  const out = {};
  const id = await client.mutation(anyApi.notes.add, {
    text: "js",
    count: 5n,
    blob: new Uint8Array([1, 2, 3]).buffer,
    score: 1.5,
    tags: ["a", "b"],
  });
  out.id = id;
  out.doc = describe(await client.query(anyApi.notes.get, { id }));
  out.echo = describe(
    await client.query(anyApi.notes.echo, {
      min: -(2n ** 63n),
      nan: NaN,
      negz: -0,
      inf: Infinity,
      one: 1,
      empty: new ArrayBuffer(0),
      skipped: undefined,
    }),
  );
  out.action = describe(await client.action(anyApi.notes.add_twice, { text: "act" }));
  out.rejected = await failure(client.mutation(anyApi.notes.reject, { text: "never" }));
  out.internal = await failure(client.mutation(anyApi.notes.secret, { text: "leak" }));
  out.internalQuery = await failure(client.query(anyApi.notes.secret_count, {}));
  out.crash = await failure(client.mutation(anyApi.notes.crash, { text: "never" }));
  out.badArgs = await failure(client.mutation(anyApi.notes.add, { text: 5 }));
  out.texts = (await client.query(anyApi.notes.list, {})).map((n) => n.text);
  return out;
}

async function chat() {
  // The chat spec's backend, byte for byte: fetch with no format and no content type.
  const CONVEX_URL = url;
  const userId = await client.mutation(anyApi.auth.createUser, { name: "Ada" });
  const threadId = await client.mutation(anyApi.threads.create, { userId, title: "Launch" });
  const [threadIdArg, type, content] = [threadId, "plan", "# Plan"];
  const response = await fetch(`${CONVEX_URL}/api/mutation`, {
    method: "POST",
    body: JSON.stringify({
      path: "artifacts:create",
      args: { threadId: threadIdArg, type, content },
    }),
  });
  const fetched = await response.json();
  await client.mutation(anyApi.messages.send, { threadId, role: "user", content: "hi" });
  const messages = await client.query(anyApi.messages.list, { threadId });
  const artifacts = await client.query(anyApi.artifacts.listByThread, { threadId });
  return {
    status: response.status,
    fetched,
    artifacts: artifacts.map((a) => [a._id, a.type, a.content]),
    messages: messages.map((m) => [m.role, m.content]),
  };
}

// The chat app's sign-in through the HTTP API, as @convex-dev/auth's client calls
// it (auth:signIn with the password provider; refresh with a fresh, anonymous client).
async function signin() {
  const out = {};
  const signIn = (c, flow, email, password) =>
    c.action(anyApi.auth.signIn, { provider: "password", params: { flow, email, password } });
  const ada = new ConvexHttpClient(url, { logger: false });
  const up = await signIn(ada, "signUp", "ada@example.com", "ada-password");
  out.tokenKeys = Object.keys(up.tokens).sort();
  ada.setAuth(up.tokens.token);
  out.authenticated = await ada.query(anyApi.auth.isAuthenticated, {});
  out.anonymous = await client.query(anyApi.auth.isAuthenticated, {});
  const me = await ada.query(anyApi.auth.currentUser, {});
  out.email = me.email;
  const threadId = await ada.mutation(anyApi.threads.create, { userId: me._id, title: "Ada's" });
  const bob = new ConvexHttpClient(url, { logger: false });
  const bobUp = await signIn(bob, "signUp", "bob@example.com", "bob-password");
  bob.setAuth(bobUp.tokens.token);
  out.bobSees = await bob.query(anyApi.threads.get, { threadId });
  out.bobSend = await failure(
    bob.mutation(anyApi.messages.send, { threadId, role: "user", content: "x" }),
  );
  out.adaSees = (await ada.query(anyApi.threads.get, { threadId })).title;
  const again = await signIn(client, "signIn", "ada@example.com", "ada-password");
  // @convex-dev/auth/react refreshes with a fresh client and no Authorization.
  const fresh = new ConvexHttpClient(url, { logger: false });
  const refreshed = await fresh.action(anyApi.auth.signIn, {
    refreshToken: again.tokens.refreshToken,
  });
  out.refreshedNew = refreshed.tokens.refreshToken !== again.tokens.refreshToken;
  ada.setAuth(refreshed.tokens.token);
  out.afterRefresh = await ada.query(anyApi.auth.isAuthenticated, {});
  out.signOut = await ada.action(anyApi.auth.signOut, {});
  out.refreshAfterSignOut = await fresh.action(anyApi.auth.signIn, {
    refreshToken: refreshed.tokens.refreshToken,
  });
  out.wrongPassword = await failure(signIn(client, "signIn", "ada@example.com", "nope-nope"));
  for (let i = 0; i < 9; i++) await failure(signIn(client, "signIn", "ada@example.com", "nope"));
  out.limited = await failure(signIn(client, "signIn", "ada@example.com", "ada-password"));
  const forged = new ConvexHttpClient(url, { logger: false });
  forged.setAuth(up.tokens.token.slice(0, -4) + "AAAA");
  out.badToken = await failure(forged.query(anyApi.auth.isAuthenticated, {}));
  // Internal functions: an admin may call them, a user may not.
  const admin = new ConvexHttpClient(url, { logger: false });
  admin.setAdminAuth(process.env.ADMIN_KEY);
  out.adminInternal = await failure(
    admin.mutation(anyApi.auth.store, { args: { type: "signOut" } }),
  );
  admin.setAdminAuth(process.env.ADMIN_KEY, {
    subject: `${me._id}|none`,
    issuer: "https://admin.example",
  });
  out.adminActing = (await admin.query(anyApi.auth.currentUser, {}))?.email ?? null;
  out.userInternal = await failure(
    bob.mutation(anyApi.auth.store, { args: { type: "signOut" } }),
  );
  const wrongAdmin = new ConvexHttpClient(url, { logger: false });
  wrongAdmin.setAdminAuth("not-the-key");
  out.wrongAdmin = await failure(wrongAdmin.query(anyApi.auth.isAuthenticated, {}));
  return out;
}

async function upload() {
  // Convex's "Uploading files" tutorial, step by step: the mutation that makes
  // an upload URL, fetch POSTing the file, the mutation that saves its ID.
  const postUrl = await client.mutation(anyApi.images.generateUploadUrl, {});
  const image = new Blob([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 1, 2])], {
    type: "image/png",
  });
  const result = await fetch(postUrl, {
    method: "POST",
    headers: { "Content-Type": image.type },
    body: image,
  });
  const { storageId } = await result.json();
  await client.mutation(anyApi.images.sendImage, { storageId, author: "Ada" });
  // The shortest form: fetch(url, {method: "POST", body}).
  const plain = await fetch(postUrl, { method: "POST", body: "hello" });
  const plainId = (await plain.json()).storageId;
  const messages = await client.query(anyApi.images.list, {});
  const served = await fetch(messages[0].url);
  const bytes = [...new Uint8Array(await served.arrayBuffer())];
  const meta = await client.query(anyApi.images.metadata, { storageId: plainId });
  await client.mutation(anyApi.images.remove, { messageId: messages[0]._id });
  const gone = await fetch(messages[0].url);
  return {
    status: result.status,
    storageId,
    saved: messages.map((m) => [m.body, m.author, m.format]),
    servedStatus: served.status,
    servedType: served.headers.get("content-type"),
    bytes,
    plainMeta: describe(meta),
    goneStatus: gone.status,
  };
}

const scenarios = { notes, chat, upload, signin };
const result = await scenarios[scenario]();
process.stdout.write(JSON.stringify(result) + "\n");
