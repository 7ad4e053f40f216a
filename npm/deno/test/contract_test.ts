// The Rust↔TypeScript contract: mod.ts reads the numbers from the library (lbws_contract);
// they are the ones the Node-API addon (the same library) exports by name.
import { assertEquals } from "./assert.ts";
import { contract } from "../ffi.ts";
import { createRequire } from "node:module";

Deno.test("the C ABI's contract is the Node-API addon's, name for name", () => {
  const require = createRequire(import.meta.url);
  const binding = require("../../binding.js") as Record<string, unknown>;
  const sorted = (o: object) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a < b ? -1 : 1));
  const napi = Object.entries(binding).filter(([name]) => /^[A-Z][A-Z0-9_]*$/.test(name));
  assertEquals(sorted(contract), sorted(Object.fromEntries(napi)));
});

Deno.test("event kinds are the RFC 6455 opcodes; the close-state bits make STATE_FINISHED", () => {
  const c = contract;
  assertEquals([c.EVENT_TEXT, c.EVENT_BINARY, c.EVENT_CLOSE, c.EVENT_PING, c.EVENT_PONG], [1, 2, 8, 9, 10]);
  assertEquals(c.STATE_CLOSE_SENT | c.STATE_CLOSE_RECEIVED, c.STATE_FINISHED);
});
