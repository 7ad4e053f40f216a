/**
 * lowbit websockets for Deno through `Deno.dlopen`: WebSocket connections over
 * `Deno.listen` / `Deno.connect` TCP streams, with permessage-deflate (which Deno's
 * built-in WebSocket server lacks). The protocol runs in Rust (the same core as the npm
 * package) behind the library's C ABI (`lbws_*`); this module moves bytes between the TCP
 * stream and the native session and never decides anything about the protocol.
 *
 * Needs `--allow-ffi` (load the library, which happens when this module loads), `--allow-net`
 * (sockets) and `--allow-read` / `--allow-env` (find the library; `LOWBIT_WS_LIB` overrides
 * the path).
 *
 * The modules behind it: `ffi.ts` (the C ABI's table, and the numbers shared with Rust, read
 * from the library), `pool.ts` (the buffers native code writes into), `connection.ts` (one
 * connection) and `handshake.ts` (`accept`, `serve`, `connect`).
 *
 * ```ts
 * import { serve } from "./mod.ts";
 * serve({ port: 9001, perMessageDeflate: true }, (ws) => {
 *   ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
 * });
 * ```
 * @module
 */

export type { ConnectionOptions, DeflateOptions, SendOptions } from "./connection.ts";
export { WebSocketConnection, WebSocketError } from "./connection.ts";
export type { ConnectOptions, Server, ServeOptions } from "./handshake.ts";
export type { LivenessOptions } from "./liveness.ts";
export { accept, connect, serve } from "./handshake.ts";
