// The Deno pool's spare write buffers are bounded by what is in flight: reused one write after
// another, kept only within the bytes being written (plus a floor), cut when they stop fitting.
import { assert, assertEquals } from "./assert.ts";
import { poolBytes, reserve, written } from "../pool.ts";

const MiB = 1024 * 1024;

Deno.test("spare write buffers are reused and bounded by the bytes in flight", () => {
  const start = poolBytes();
  // One connection writing large messages one after the other reuses one buffer.
  const first = reserve(2 * MiB, true);
  written(first);
  const second = reserve(2 * MiB, true);
  assert(second.buffer === first.buffer, "the written buffer was not reused");
  written(second);

  // Three writes at once: once written, the spares stay within what was still in flight
  // when each came back, plus the 1 MiB floor.
  const three = [reserve(2 * MiB, true), reserve(2 * MiB, true), reserve(2 * MiB, true)];
  assertEquals(poolBytes().inFlight - start.inFlight, 6 * MiB);
  for (const b of three) written(b);
  assertEquals(poolBytes().inFlight, start.inFlight);
  assert(poolBytes().spare <= 4 * MiB, `kept ${poolBytes().spare} bytes of spares`);
  assert(poolBytes().spare >= 2 * MiB, "kept no spare at all");

  // A write no spare fits: the spares are cut to what is in flight plus the floor.
  const big = reserve(3 * MiB, true);
  assert(poolBytes().spare <= MiB, `kept ${poolBytes().spare} bytes of spares while 3 MiB are in flight`);
  written(big);
});
