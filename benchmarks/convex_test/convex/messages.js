// The functions of benchmarks/peers/one_store_peer.py, in Convex's JS API.
// Constants mirror benchmarks/workload.py; bench.test.js checks them against
// the workload file Python writes.
import { v } from "convex/values";
import { api } from "./_generated/api.js";
import { action, mutation, query } from "./_generated/server.js";

export const ROLES = ["user", "assistant", "system", "tool"];
export const MODELS = ["gpt-4o", "claude-3", "llama-3", "mistral"];
export const EQ_LIMIT = 100;
export const LATEST_LIMIT = 10;
export const PAGE_SIZE = 100;
export const SEARCH_LIMIT = 10;

const role = v.union(...ROLES.map((r) => v.literal(r)));
// int64, as one_store's v.int64(): tokens are bigints on this side.
const meta = v.object({
  tokens: v.int64(),
  model: v.union(...MODELS.map((m) => v.literal(m))),
});
export const message = {
  threadId: v.string(),
  role,
  content: v.string(),
  tags: v.array(v.string()),
  meta,
};

export const send = mutation({
  args: message,
  handler: (ctx, args) => ctx.db.insert("messages", args),
});

export const retag = mutation({
  args: { id: v.id("messages"), role, meta },
  handler: async (ctx, args) => {
    await ctx.db.patch(args.id, { role: args.role, meta: args.meta });
  },
});

export const remove = mutation({
  args: { id: v.id("messages") },
  handler: async (ctx, args) => {
    await ctx.db.delete(args.id);
  },
});

export const get_message = query({
  args: { id: v.id("messages") },
  handler: (ctx, args) => ctx.db.get(args.id),
});

export const thread_messages = query({
  args: { threadId: v.string() },
  handler: (ctx, args) =>
    ctx.db
      .query("messages")
      .withIndex("by_thread", (q) => q.eq("threadId", args.threadId))
      .take(EQ_LIMIT),
});

export const tokens_between = query({
  args: { role, lo: v.int64(), hi: v.int64() },
  handler: (ctx, args) =>
    ctx.db
      .query("messages")
      .withIndex("by_role_tokens", (q) =>
        q.eq("role", args.role).gte("meta.tokens", args.lo).lt("meta.tokens", args.hi),
      )
      .collect(),
});

export const newest = query({
  args: { threadId: v.string() },
  handler: (ctx, args) =>
    ctx.db
      .query("messages")
      .withIndex("by_thread", (q) => q.eq("threadId", args.threadId))
      .order("desc")
      .take(LATEST_LIMIT),
});

export const page_messages = query({
  args: { cursor: v.union(v.string(), v.null()) },
  handler: (ctx, args) =>
    ctx.db.query("messages").paginate({ numItems: PAGE_SIZE, cursor: args.cursor }),
});

export const search_messages = query({
  args: { text: v.string() },
  handler: (ctx, args) =>
    ctx.db
      .query("messages")
      .withSearchIndex("search_content", (q) => q.search("content", args.text))
      .take(SEARCH_LIMIT),
});

export const three = action({
  args: { doc: v.object(message), role, meta },
  handler: async (ctx, args) => {
    const id = await ctx.runMutation(api.messages.send, args.doc);
    await ctx.runMutation(api.messages.retag, { id, role: args.role, meta: args.meta });
    await ctx.runMutation(api.messages.remove, { id });
  },
});
