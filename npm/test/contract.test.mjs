// The Rust↔JavaScript contract (crates/node/src/contract.rs): the addon exports every number by
// name, lib/ uses those exports, and no JavaScript or TypeScript file restates them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const binding = require('../binding.js');
const native = require('../lib/native.js');

/** The addon's constants: its exports named in capitals. */
const constants = Object.fromEntries(Object.entries(binding).filter(([name]) => /^[A-Z][A-Z0-9_]*$/.test(name)));

test('the addon exports the contract: event kinds are the RFC 6455 opcodes, state bits, head length', () => {
  assert.deepEqual(
    {
      text: constants.EVENT_TEXT, binary: constants.EVENT_BINARY, close: constants.EVENT_CLOSE,
      ping: constants.EVENT_PING, pong: constants.EVENT_PONG, head: constants.EVENT_HEAD_LEN,
    },
    { text: 1, binary: 2, close: 8, ping: 9, pong: 10, head: 8 },
  );
  assert.equal(constants.STATE_CLOSE_SENT | constants.STATE_CLOSE_RECEIVED, constants.STATE_FINISHED);
  assert.equal(constants.STATE_CLOSE_SENT & constants.STATE_CLOSE_RECEIVED, 0);
  for (const [name, value] of Object.entries(constants)) assert.equal(typeof value, 'number', name);
});

test('lib/native.js hands on the addon\'s values, not its own', () => {
  for (const name of ['EVENT_TEXT', 'EVENT_BINARY', 'EVENT_CLOSE', 'EVENT_PING', 'EVENT_PONG', 'EVENT_HEAD_LEN']) {
    assert.equal(native[name], binding[name], name);
  }
});

test('no JavaScript or TypeScript file compares event kinds or picks opcodes by number', () => {
  const files = [
    ...readdirSync(new URL('../lib/', import.meta.url)).map((f) => new URL(`../lib/${f}`, import.meta.url)),
    ...readdirSync(new URL('../deno/', import.meta.url)).filter((f) => f.endsWith('.ts'))
      .map((f) => new URL(`../deno/${f}`, import.meta.url)),
  ];
  const numbered = [/kind\s*===\s*\d/, /\?\s*2\s*:\s*1\b/, /lbws_state\([^)]*\)\s*(&\s*\d|===\s*\d)/, /sessionState\([^)]*\)\s*(&\s*\d|===\s*\d)/];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const pattern of numbered) assert.doesNotMatch(text, pattern, `${file.pathname}: ${pattern}`);
  }
});
