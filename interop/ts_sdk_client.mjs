// The TypeScript SDK's own OAuth client logs in to an MCP server and calls its `whoami` tool.
//
//   node ts_sdk_client.mjs MCP_URL WALKER...
//
// The SDK does discovery, dynamic registration, PKCE and the token request through its auth() flow
// (driven by StreamableHTTPClientTransport and our OAuthClientProvider below); the user is WALKER
// (walk.py, which follows the authorization URL through the consent page and the upstream login form
// and prints the redirect's query). Prints `whoami -> <the tool's structured answer as JSON>`.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mcpUrl, ...walker] = process.argv.slice(2);
if (!mcpUrl || walker.length === 0) {
  console.error("usage: node ts_sdk_client.mjs MCP_URL WALKER...");
  process.exit(2);
}
const REDIRECT_URL = "http://127.0.0.1:53682/callback"; // nothing listens: the walker stops there

/** An OAuthClientProvider that keeps everything in memory and hands the login to the walker. */
class HeadlessProvider {
  landed = undefined;
  #client = undefined;
  #tokens = undefined;
  #verifier = undefined;
  #state = randomUUID();

  get redirectUrl() {
    return REDIRECT_URL;
  }
  get clientMetadata() {
    return {
      client_name: "mcp-authserver interop: TypeScript SDK",
      redirect_uris: [REDIRECT_URL],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    return this.#state;
  }
  clientInformation() {
    return this.#client;
  }
  saveClientInformation(info) {
    this.#client = info;
  }
  tokens() {
    return this.#tokens;
  }
  saveTokens(tokens) {
    this.#tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this.#verifier = verifier;
  }
  codeVerifier() {
    return this.#verifier;
  }
  async redirectToAuthorization(url) {
    const [command, ...args] = walker;
    const { stdout } = await promisify(execFile)(command, [...args, "--print", url.href], { timeout: 60_000 });
    this.landed = JSON.parse(stdout);
  }
}

const provider = new HeadlessProvider();
const client = new Client({ name: "mcp-authserver-interop-ts-sdk", version: "1.0.0" });
const transport = () => new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });

let first = transport();
try {
  await client.connect(first);
  throw new Error("the server let the client in without a login");
} catch (error) {
  if (!(error instanceof UnauthorizedError)) throw error;
}
// The SDK has registered, sent the user to the authorization URL and stopped; the user came back with:
const { code, state, error } = provider.landed ?? {};
if (!code) throw new Error(`the login ended without a code: ${error ?? JSON.stringify(provider.landed)}`);
if (state !== provider.state()) throw new Error(`the redirect carried state ${state}, not the one sent`);
await first.finishAuth(code); // the SDK's token request, with its PKCE verifier

await client.connect(transport());
const result = await client.callTool({ name: "whoami", arguments: {} });
if (result.isError) throw new Error(`whoami failed: ${JSON.stringify(result.content)}`);
console.log(`whoami -> ${JSON.stringify(result.structuredContent)}`);
await client.close();
