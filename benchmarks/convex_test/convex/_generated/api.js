// Stand-in for `npx convex codegen` (which needs a deployment): untyped
// function references, exactly what the generated api.js exports at runtime.
// convex-test also finds the functions' root folder by this `_generated` folder.
import { anyApi } from "convex/server";

export const api = anyApi;
export const internal = anyApi;
