// mcp-remote logs in to an MCP server through a BROWSER script, then serves it over stdio, where the
// TypeScript SDK's stdio client calls its `whoami` tool.
//
//   node mcp_remote_client.mjs MCP_URL CALLBACK_PORT BROWSER LOG_FILE
//
// mcp-remote registers dynamically, listens on CALLBACK_PORT for the redirect, and opens the
// authorization URL with the `open` package, whose xdg-open runs $BROWSER when it detects no desktop:
// the desktop variables are cleared (DISPLAY, WAYLAND_DISPLAY) or set to the generic one
// (XDG_CURRENT_DESKTOP=X-Generic), so a developer's real browser never opens. mcp-remote's stderr and
// the browser's log go to LOG_FILE; it keeps its tokens in $MCP_REMOTE_CONFIG_DIR, a new empty directory
// (made here, and removed, when that is not set), so every run logs in. Prints `whoami -> <the tool's structured answer as JSON>`.
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [mcpUrl, callbackPort, browser, logFile] = process.argv.slice(2);
if (!logFile) {
  console.error("usage: node mcp_remote_client.mjs MCP_URL CALLBACK_PORT BROWSER LOG_FILE");
  process.exit(2);
}
const proxy = createRequire(import.meta.url).resolve("mcp-remote/dist/proxy.js");
const configDir = process.env.MCP_REMOTE_CONFIG_DIR ?? mkdtempSync(join(tmpdir(), "mcp-remote-"));

const passed = ["PATH", "HOME", "TMPDIR", "PYTHONPATH", "INTEROP_PYTHON", "INTEROP_SUBJECT"];
const env = Object.fromEntries(passed.filter((name) => process.env[name] !== undefined).map((n) => [n, process.env[n]]));
Object.assign(env, {
  BROWSER: browser,
  INTEROP_BROWSER_LOG: logFile,
  MCP_REMOTE_CONFIG_DIR: configDir,
  XDG_CURRENT_DESKTOP: "X-Generic",
});

const transport = new StdioClientTransport({
  command: process.execPath,
  args: [proxy, mcpUrl, callbackPort, "--auth-timeout", "60"],
  env,
  stderr: openSync(logFile, "a"),
});
const client = new Client({ name: "mcp-authserver-interop-mcp-remote", version: "1.0.0" });
try {
  await client.connect(transport, { timeout: 90_000 }); // mcp-remote answers once the login is done
  const result = await client.callTool({ name: "whoami", arguments: {} });
  if (result.isError) throw new Error(`whoami failed: ${JSON.stringify(result.content)}`);
  console.log(`whoami -> ${JSON.stringify(result.structuredContent)}`);
} finally {
  await client.close();
  if (!process.env.MCP_REMOTE_CONFIG_DIR) rmSync(configDir, { recursive: true, force: true });
}
