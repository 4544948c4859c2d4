// Stand-in for `npx convex codegen`: the generated server.js re-exports these
// builders under these names.
export {
  actionGeneric as action,
  mutationGeneric as mutation,
  queryGeneric as query,
} from "convex/server";
