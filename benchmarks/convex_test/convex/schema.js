// The benchmark's messages table, as benchmarks/peers/one_store_peer.py
// declares it: same validators, same indexes, same search index.
import { defineSchema, defineTable } from "convex/server";
import { message } from "./messages.js";

export default defineSchema({
  messages: defineTable(message)
    .index("by_thread", ["threadId"])
    .index("by_role_tokens", ["role", "meta.tokens"])
    .searchIndex("search_content", { searchField: "content" }),
});
