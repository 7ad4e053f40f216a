// Tiny assertions (no remote imports: tests must run from the local checkout only).
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertEquals(actual: unknown, expected: unknown, msg?: string) {
  const a = actual instanceof Uint8Array ? Array.from(actual.subarray(0, 64)).join(",") + `#${actual.length}#${hash(actual)}` : JSON.stringify(actual);
  const e = expected instanceof Uint8Array ? Array.from(expected.subarray(0, 64)).join(",") + `#${expected.length}#${hash(expected)}` : JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ?? "not equal"}:\n  actual:   ${a.slice(0, 300)}\n  expected: ${e.slice(0, 300)}`);
}

function hash(b: Uint8Array): number {
  let h = 2166136261;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 16777619);
  return h >>> 0;
}
