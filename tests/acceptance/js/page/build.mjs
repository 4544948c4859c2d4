// Bundles app.jsx with react, react-dom and convex/react from node_modules (no
// CDN) into <outdir>/index.html, one self-contained file for headless Chromium.
// Usage: node page/build.mjs <outdir>
import { build } from "esbuild";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [outdir] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const result = await build({
  entryPoints: [join(here, "app.jsx")],
  bundle: true,
  write: false,
  format: "iife",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "error",
});
mkdirSync(outdir, { recursive: true });
const script = result.outputFiles[0].text.replaceAll("</script", "<\\/script");
writeFileSync(
  join(outdir, "index.html"),
  `<!doctype html><html><head><meta charset="utf-8"><title>chat</title></head>` +
    `<body><div id="root"></div><script>${script}</script></body></html>`,
);
