#!/usr/bin/env node
// sdk-test.mjs drives a wirescope MCP server with the official TypeScript SDK
// and exits non-zero, with a line starting "sdk-test: FAIL:", on the first
// thing that is wrong. cmd/wirescope/clients_test.go runs it; by hand:
//
//   node sdk-test.mjs [--suite demo|cancel] [--tshark PATH] [--timeout SECONDS] \
//        --stdio BINARY [SERVER ARGS…]          (everything after BINARY goes to the server)
//   node sdk-test.mjs [--suite demo|cancel] [--tshark PATH] --http URL --token TOKEN
//
// Suites:
//   demo   (default) the server serves the built-in capture (wirescope mcp --demo):
//          tools/list (names, annotations, schemas), every tool called once,
//          get_pcap's file read back with resources/read and checked with tshark,
//          dissect's progress notifications.
//   rollout the server serves an eval scenario's capture and cluster file:
//          compare_windows at --rollout-at must say regressed and name each
//          --expect string (comma-separated) in its first evidence; get_call
//          on its example, service_map and list_workloads answer.
//   cancel the server serves a capture large enough that dissecting it takes
//          seconds: dissect is aborted after its first progress notification,
//          then the server must still answer, and a new dissect of the same
//          window must complete.
// Over HTTP both suites also check that a request without the token gets 401.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const TOOLS = ["capture_status", "list_flows", "get_pcap", "dissect", "search_calls", "get_call", "summarize_traffic",
  "compare_windows", "service_map", "list_workloads"];
const PROMPTS = ["investigate_incident", "verify_rollout", "map_dependencies"];
const HINTS = ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"];
// What the built-in capture holds (internal/demo/shop-errors.expected.json).
const DEMO = { calls: 288, status503: 37, path503: "/api/recommendations", server: "127.0.0.5:8080" };

class Failure extends Error {}

function fail(msg) {
  throw new Failure(msg);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

function log(msg) {
  console.log(`sdk-test: ${msg}`);
}

function usage(msg) {
  console.error(`sdk-test: ${msg}
usage: node sdk-test.mjs [--suite demo|cancel] [--tshark PATH] [--timeout SECONDS] --stdio BINARY [ARGS…]
       node sdk-test.mjs [--suite demo|cancel] [--tshark PATH] [--timeout SECONDS] --http URL --token TOKEN`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { suite: "demo", tshark: "tshark", timeout: 240 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--suite":
        o.suite = value();
        if (!["demo", "cancel", "rollout"].includes(o.suite)) usage(`unknown suite ${o.suite}`);
        break;
      case "--rollout-at":
        o.rolloutAt = value();
        break;
      case "--expect":
        o.expect = value().split(",");
        break;
      case "--tshark":
        o.tshark = value();
        break;
      case "--timeout":
        o.timeout = Number(value());
        if (!(o.timeout > 0)) usage("--timeout needs a positive number of seconds");
        break;
      case "--http":
        o.http = value();
        break;
      case "--token":
        o.token = value();
        break;
      case "--stdio":
        o.stdio = argv.slice(i + 1);
        if (o.stdio.length === 0) usage("--stdio needs the server's command");
        i = argv.length;
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  if (!o.stdio === !o.http) usage("give exactly one of --stdio and --http");
  if (o.http && !o.token) usage("--http needs --token");
  return o;
}

// connect returns a connected client and what it talks to.
async function connect(o) {
  const client = new Client({ name: "wirescope-sdk-test", version: "1.0.0" });
  client.onerror = (err) => clientErrors.push({ at: Date.now(), message: String(err?.message ?? err) });
  let transport;
  if (o.stdio) {
    const [command, ...args] = o.stdio;
    transport = new StdioClientTransport({ command, args, stderr: "inherit" });
  } else {
    transport = new StreamableHTTPClientTransport(new URL(o.http), {
      requestInit: { headers: { Authorization: `Bearer ${o.token}` } },
    });
  }
  await client.connect(transport);
  const info = client.getServerVersion();
  check(info?.name === "wirescope", `server calls itself ${JSON.stringify(info)}, want name "wirescope"`);
  const caps = client.getServerCapabilities();
  check(caps?.tools, `server announces no tools capability: ${JSON.stringify(caps)}`);
  check(caps?.resources, `server announces no resources capability: ${JSON.stringify(caps)}`);
  log(`connected to ${info.name} ${info.version} over ${o.stdio ? "stdio" : "streamable HTTP"} (protocol ${transport.protocolVersion ?? "negotiated"})`);
  return client;
}

// clientErrors are what the SDK reported through Client.onerror: messages it
// could not route, such as progress for a request it no longer waits for.
const clientErrors = [];

async function listTools(client) {
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  const names = tools.map((t) => t.name);
  for (const want of TOOLS) check(names.includes(want), `tools/list lacks ${want}: it lists ${names.join(", ")}`);
  for (const t of tools) {
    const a = t.annotations;
    check(a && typeof a === "object", `tool ${t.name} has no annotations`);
    for (const h of HINTS) {
      check(typeof a[h] === "boolean", `tool ${t.name}: annotations.${h} is ${JSON.stringify(a[h])}, want a boolean`);
    }
    check(t.inputSchema?.type === "object", `tool ${t.name}: inputSchema.type is ${JSON.stringify(t.inputSchema?.type)}, want "object"`);
    check(typeof t.description === "string" && t.description.length > 0, `tool ${t.name} has no description`);
  }
  log(`tools/list: ${names.length} tools (${names.join(", ")}), all with the four hints and an object inputSchema`);
  return tools;
}

// call calls a tool and checks it answered with text and without isError.
async function call(client, name, args = {}, options = {}) {
  const started = Date.now();
  const res = await client.callTool({ name, arguments: args }, undefined, options);
  const text = (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
  check(!res.isError, `${name} ${JSON.stringify(args)} returned isError: ${text}`);
  check(text.trim().length > 0, `${name} ${JSON.stringify(args)} returned no text content: ${JSON.stringify(res.content)}`);
  const first = text.split("\n")[0];
  log(`${name} ${JSON.stringify(args)}: ok in ${Date.now() - started} ms: ${first.length > 160 ? first.slice(0, 160) + "…" : first}`);
  return { res, text };
}

function sumCalls(sc) {
  return Object.values(sc?.calls ?? {}).reduce((a, b) => a + b, 0);
}

// checkProgress checks the progress notifications one request received.
function checkProgress(what, progress) {
  const seq = progress.map((p) => `${p.progress}/${p.total ?? "?"}`).join(", ");
  check(progress.length >= 1, `${what}: no notifications/progress arrived (the request carried a progressToken)`);
  let prev = -Infinity;
  for (const p of progress) {
    check(typeof p.progress === "number", `${what}: progress ${JSON.stringify(p)} has no numeric progress`);
    if (p.total !== undefined) {
      check(p.progress <= p.total, `${what}: progress ${p.progress} exceeds total ${p.total} (notifications in order of arrival: ${seq})`);
    }
    check(p.progress > prev, `${what}: progress did not increase (${prev} then ${p.progress}; notifications in order of arrival: ${seq})`);
    prev = p.progress;
  }
  const last = progress[progress.length - 1];
  log(`${what}: ${progress.length} progress notification(s): ${seq}${last.message ? ` "${last.message}"` : ""}`);
}

async function getPCAP(client, o) {
  const { res } = await call(client, "get_pcap", { max_tokens: 4000 });
  const sc = res.structuredContent;
  check(sc && typeof sc === "object", `get_pcap returned no structuredContent`);
  for (const k of ["uri", "size", "packets", "sha256", "format"]) {
    check(sc[k] !== undefined, `get_pcap's structuredContent lacks ${k}: ${JSON.stringify(sc)}`);
  }
  check(!JSON.stringify(res).includes("/pcaps/"), `get_pcap shows a path on the server: ${JSON.stringify(sc)}`);
  const link = res.content.find((c) => c.type === "resource_link");
  check(link, `get_pcap returned no resource_link content: ${JSON.stringify(res.content.map((c) => c.type))}`);
  check(/^pcap:\/\/./.test(link.uri), `get_pcap's resource_link URI ${link.uri} is not pcap://…`);
  check(link.uri === sc.uri, `get_pcap's resource_link URI ${link.uri} differs from structuredContent.uri ${sc.uri}`);

  const read = await client.readResource({ uri: link.uri });
  check(read.contents?.length === 1, `resources/read ${link.uri} returned ${read.contents?.length} contents, want 1`);
  const c = read.contents[0];
  check(typeof c.blob === "string", `resources/read ${link.uri} returned no blob (text? ${typeof c.text})`);
  const bytes = Buffer.from(c.blob, "base64");
  check(bytes.length === sc.size, `resources/read ${link.uri}: ${bytes.length} bytes, structuredContent.size says ${sc.size}`);
  const sum = createHash("sha256").update(bytes).digest("hex");
  check(sum === sc.sha256, `resources/read ${link.uri}: sha256 ${sum}, structuredContent.sha256 says ${sc.sha256}`);
  const embedded = res.content.find((x) => x.type === "resource" && x.resource?.uri === sc.uri);
  if (embedded) {
    check(Buffer.from(embedded.resource.blob ?? "", "base64").equals(bytes), `get_pcap's embedded resource differs from resources/read's bytes`);
  }

  const dir = mkdtempSync(join(tmpdir(), "wirescope-sdk-test-"));
  try {
    const file = join(dir, `export.${sc.format}`);
    writeFileSync(file, bytes);
    const r = spawnSync(o.tshark, ["-r", file, "-T", "fields", "-e", "frame.number"], { encoding: "utf8", maxBuffer: 256 << 20 });
    check(!r.error, `running ${o.tshark}: ${r.error?.message}`);
    check(r.status === 0, `${o.tshark} -r ${file} exited ${r.status}: ${r.stderr}`);
    const packets = r.stdout.split("\n").filter((l) => l.trim() !== "").length;
    check(packets === sc.packets, `tshark reads ${packets} packets from the exported file, structuredContent.packets says ${sc.packets}`);
    log(`get_pcap: ${link.uri} read back (${bytes.length} bytes, sha256 matches, ${sc.format}); tshark reads ${packets} packets as announced`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return sc;
}

async function demoSuite(client, o) {
  await listTools(client);
  await call(client, "capture_status", { max_tokens: 2000 });
  await call(client, "list_flows", { max_tokens: 2000, limit: 10 });
  const pcap = await getPCAP(client, o);

  // dissect the first half of the capture, which nothing has dissected yet,
  // asking for progress; then all of it (from a relative time), which
  // dissects the rest and skips the half.
  const first = Date.parse(pcap.first);
  const last = Date.parse(pcap.last);
  check(first > 0 && last > first, `get_pcap's first/last (${pcap.first}, ${pcap.last}) are not a time range`);
  const mid = new Date(Math.floor((first + last) / 2)).toISOString();
  const progress = [];
  const half = await call(client, "dissect", { to: mid }, { onprogress: (p) => progress.push(p) });
  check(half.res.structuredContent?.dissected?.length > 0,
    `dissect {to: ${mid}} dissected nothing, but nothing was dissected before: ${half.text}`);
  checkProgress(`dissect {to: ${mid}}`, progress);
  const rest = await call(client, "dissect", { from: "-24h" });
  check(rest.res.structuredContent?.skipped?.length > 0, `dissect of all the data skipped nothing after the first half was dissected: ${rest.text}`);
  const calls = sumCalls(half.res.structuredContent) + sumCalls(rest.res.structuredContent);
  check(calls === DEMO.calls, `the two dissections found ${calls} calls, the demo capture holds ${DEMO.calls}`);

  const found = await call(client, "search_calls", { query: "status:503", limit: 200, max_tokens: 32000 });
  const lines = found.text.split("\n").filter((l) => /\bid=\S+/.test(l));
  check(lines.length === DEMO.status503, `search_calls status:503 listed ${lines.length} calls, the demo capture has ${DEMO.status503}:\n${found.text}`);
  for (const l of lines) check(l.includes(" 503 ") && l.includes(DEMO.path503), `search_calls status:503 listed a call that is not a 503 on ${DEMO.path503}: ${l}`);
  const errors = await call(client, "search_calls", { query: "outcome:server_error", limit: 5 });
  const id = errors.text.match(/\bid=(\S+)/)?.[1];
  check(id, `search_calls outcome:server_error gave no id=…:\n${errors.text}`);
  const one = await call(client, "get_call", { id });
  check(one.text.includes(id), `get_call ${id} does not mention the id:\n${one.text}`);
  check(/\b50[03]\b/.test(one.text), `get_call ${id} (a server error) shows no 500 or 503:\n${one.text}`);
  const sum = await call(client, "summarize_traffic", { max_tokens: 4000 });
  check(sum.text.includes(DEMO.path503), `summarize_traffic does not name ${DEMO.path503}:\n${sum.text}`);

  // The investigation tools. The demo's failures are steady, so comparing
  // its halves finds nothing; the eval scenarios test regressions.
  const cmp = await call(client, "compare_windows", { rollout_at: mid });
  check(/^verdict: (ok|inconclusive) — /.test(cmp.text), `compare_windows over the steady demo capture:\n${cmp.text}`);
  const map = await call(client, "service_map", {});
  const edges = map.text.split("\n").filter((l) => / → \S+ http:/.test(l));
  check(edges.length === 4 && edges.every((l) => l.includes(`→ ${DEMO.server} http`)),
    `service_map over the demo capture: want 4 client edges to ${DEMO.server}:\n${map.text}`);
  const wl = await call(client, "list_workloads", { ip: "127.0.0.5" });
  check(wl.text.includes("127.0.0.5 (no Kubernetes identity)"), `list_workloads ip=127.0.0.5:\n${wl.text}`);
  await prompts(client);
}

// prompts lists the prompts and gets each with its required arguments.
async function prompts(client) {
  const list = await client.listPrompts();
  const names = list.prompts.map((p) => p.name);
  for (const want of PROMPTS) check(names.includes(want), `prompts/list lacks ${want}: it lists ${names.join(", ")}`);
  for (const p of list.prompts) {
    const args = {};
    for (const a of p.arguments ?? []) if (a.required) args[a.name] = "2026-11-21T14:02:00Z";
    const got = await client.getPrompt({ name: p.name, arguments: args });
    const text = got.messages?.[0]?.content?.text ?? "";
    check(got.messages?.[0]?.role === "user" && /\b[a-z]+_[a-z]+\b/.test(text), `prompts/get ${p.name}: ${JSON.stringify(got)}`);
    for (const v of Object.values(args)) check(text.includes(v), `prompts/get ${p.name}: the argument ${v} is not in the text:\n${text}`);
  }
  log(`prompts/list: ${names.join(", ")}; prompts/get answered each`);
}

// rolloutSuite verifies a recorded rollout that broke an endpoint (an eval
// scenario served with its cluster file): compare_windows must say
// regressed and name, in its first evidence, every --expect string (the
// endpoint, the status, a new pod); service_map and list_workloads must
// name the workloads with their pods.
async function rolloutSuite(client, o) {
  check(o.rolloutAt && o.expect?.length, "the rollout suite needs --rollout-at and --expect");
  await listTools(client);
  const cmp = await call(client, "compare_windows", { rollout_at: o.rolloutAt, max_tokens: 4000 });
  check(cmp.text.startsWith("verdict: regressed — "), `compare_windows rollout_at=${o.rolloutAt} did not say regressed:\n${cmp.text}`);
  const lines = cmp.text.split("\n");
  const i = lines.indexOf("evidence, most significant first:");
  check(i >= 0 && lines[i + 1]?.startsWith("1. "), `compare_windows gave no evidence:\n${cmp.text}`);
  const first = lines.slice(i + 1, i + 3).join("\n");
  for (const want of o.expect) check(first.includes(want), `the first evidence does not name ${want}:\n${first}`);
  const id = first.match(/get_call id=(\S+)/)?.[1] ?? cmp.text.match(/get_call id=(\S+)/)?.[1];
  check(id, `compare_windows points to no get_call example:\n${cmp.text}`);
  const example = await call(client, "get_call", { id });
  check(example.text.includes(id), `get_call ${id}:\n${example.text}`);
  const map = await call(client, "service_map", { max_tokens: 4000 });
  check(/ → \S+\/\S+ http: \d+ calls, \d+ failed/.test(map.text), `service_map shows no failing workload edge:\n${map.text}`);
  const wl = await call(client, "list_workloads", { max_tokens: 4000 });
  check(/: pods [a-z0-9-]+/.test(wl.text) && wl.text.includes("labels "), `list_workloads names no pods or labels:\n${wl.text}`);
  log(`rollout verified: ${lines[0]}`);
}

async function cancelSuite(client) {
  await listTools(client);
  await call(client, "capture_status", {});
  const ac = new AbortController();
  const reason = "sdk-test cancels this dissection";
  const progress = [];
  let timer;
  const started = Date.now();
  const abort = (why) => {
    if (ac.signal.aborted) return;
    log(`aborting dissect after ${Date.now() - started} ms (${why})`);
    ac.abort(reason);
  };
  timer = setTimeout(() => abort("300 ms passed"), 300);
  let outcome;
  try {
    const res = await client.callTool({ name: "dissect", arguments: {} }, undefined, {
      signal: ac.signal,
      timeout: 120_000,
      onprogress: (p) => {
        progress.push(p);
        abort(`progress ${p.progress}/${p.total}`);
      },
    });
    outcome = { res };
  } catch (err) {
    outcome = { err };
  } finally {
    clearTimeout(timer);
  }
  check(!outcome.res, `dissect was not cancelled: it completed before the abort (${JSON.stringify(outcome.res?.structuredContent)}); the capture is too small to test cancellation`);
  const msg = String(outcome.err?.message ?? outcome.err);
  check(ac.signal.aborted, `dissect failed before it was aborted: ${msg}`);
  check(msg.includes(reason) || /abort|cancel/i.test(msg), `the aborted dissect rejected with an unexpected error: ${msg}`);
  const abortedAt = Date.now();
  log(`aborted dissect rejected after ${abortedAt - started} ms: ${msg}`);

  // The server must go on answering.
  const t0 = Date.now();
  await call(client, "capture_status", {}, { timeout: 15_000 });
  log(`capture_status answered ${Date.now() - t0} ms after the cancellation`);

  // And dissect the same window anew, to the end: the cancelled run must not
  // have finished it (else cancelling did not stop it).
  const again = [];
  const done = await call(client, "dissect", {}, { timeout: 240_000, resetTimeoutOnProgress: true, onprogress: (p) => again.push(p) });
  const sc = done.res.structuredContent;
  check(sc?.dissected?.length > 0, `dissect after the cancellation dissected nothing (so the cancelled run went on to the end): ${done.text}`);
  check(sc.packets > 0 && sumCalls(sc) > 0, `dissect after the cancellation found no packets or calls: ${JSON.stringify(sc)}`);
  checkProgress("dissect after the cancellation", again);

  // Progress for the cancelled request reaches the SDK as "unknown token"
  // errors: a server that stopped sends none after a moment.
  const late = clientErrors.filter((e) => /progress notification for an unknown token/.test(e.message) && e.at > abortedAt + 1000);
  check(late.length < 3, `the server sent ${late.length} progress notifications for the cancelled dissect more than 1 s after ` +
    `notifications/cancelled, the last ${late[late.length - 1]?.at - abortedAt} ms after it: it did not stop. Last: ${late[late.length - 1]?.message}`);
}

// checkUnauthorized checks that the hub refuses requests without the token.
async function checkUnauthorized(url, token) {
  const body = JSON.stringify({
    jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "sdk-test", version: "1" } },
  });
  const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };
  for (const [what, h] of [["no token", headers], ["a wrong token", { ...headers, Authorization: `Bearer ${token}x` }]]) {
    const r = await fetch(url, { method: "POST", headers: h, body });
    const text = await r.text();
    check(r.status === 401, `POST ${url} with ${what}: status ${r.status}, want 401: ${text.slice(0, 300)}`);
  }
  log(`POST ${url} without the token or with a wrong one: 401`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const deadline = setTimeout(() => {
    console.error(`sdk-test: FAIL: the ${o.suite} suite did not finish within ${o.timeout} s`);
    process.exit(1);
  }, o.timeout * 1000);
  deadline.unref();
  if (o.http) await checkUnauthorized(o.http, o.token);
  const client = await connect(o);
  try {
    if (o.suite === "demo") await demoSuite(client, o);
    else if (o.suite === "rollout") await rolloutSuite(client, o);
    else await cancelSuite(client);
  } finally {
    await client.close().catch(() => {});
  }
  for (const e of clientErrors) log(`note: client error: ${e.message}`);
  log(`PASS: ${o.suite} suite over ${o.stdio ? "stdio" : "streamable HTTP"}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    for (const e of clientErrors) console.error(`sdk-test: note: client error: ${e.message}`);
    console.error(`sdk-test: FAIL: ${err instanceof Failure ? err.message : err?.stack ?? err}`);
    process.exit(1);
  },
);
