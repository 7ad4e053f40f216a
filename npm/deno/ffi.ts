/**
 * The library's C ABI as Deno sees it: the symbol table, the library (opened when this module
 * loads), the numbers shared with Rust (read from the library, never restated here) and small
 * helpers to read what native code returns. Nothing here decides anything about the protocol.
 * @module
 */

const symbols = {
  lbws_contract: { parameters: [], result: "pointer" },
  lbws_new: { parameters: ["u32", "f64", "u32"], result: "pointer" },
  lbws_free: { parameters: ["pointer"], result: "void" },
  lbws_set_max_fragments: { parameters: ["pointer", "f64"], result: "void" },
  lbws_accept: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  lbws_request: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "buffer", "usize", "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  lbws_response: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  lbws_handshake_used: { parameters: ["pointer"], result: "usize" },
  lbws_handshake_info_ptr: { parameters: ["pointer"], result: "pointer" },
  lbws_handshake_info_len: { parameters: ["pointer"], result: "usize" },
  lbws_receive: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  lbws_receive_at: { parameters: ["pointer", "buffer", "u32", "buffer", "u32", "u32", "buffer"], result: "i32" },
  lbws_take_events: { parameters: ["pointer", "buffer", "u32", "u32"], result: "i32" },
  lbws_send_at: { parameters: ["pointer", "u32", "buffer", "u32", "u32", "u32", "buffer", "u32", "u32"], result: "i32" },
  lbws_output_at: { parameters: ["pointer", "buffer", "u32", "u32"], result: "i32" },
  lbws_events_ptr: { parameters: ["pointer"], result: "pointer" },
  lbws_events_len: { parameters: ["pointer"], result: "usize" },
  lbws_receive_eof: { parameters: ["pointer"], result: "i32" },
  lbws_send: { parameters: ["pointer", "u32", "buffer", "usize", "u32", "u32"], result: "i32" },
  lbws_reply_close: { parameters: ["pointer"], result: "i32" },
  lbws_ping: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  lbws_pong: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  lbws_close: { parameters: ["pointer", "u32", "buffer", "usize"], result: "i32" },
  lbws_output_ptr: { parameters: ["pointer"], result: "pointer" },
  lbws_output_len: { parameters: ["pointer"], result: "usize" },
  lbws_consume_output: { parameters: ["pointer", "usize"], result: "void" },
  lbws_error_ptr: { parameters: ["pointer"], result: "pointer" },
  lbws_error_len: { parameters: ["pointer"], result: "usize" },
  lbws_state: { parameters: ["pointer"], result: "u32" },
} as const;

/** napi-rs's name for this platform (`linux-x64-gnu`, `darwin-arm64`, ...). */
function platform(): string {
  const arch = Deno.build.arch === "x86_64" ? "x64" : "arm64";
  if (Deno.build.os === "linux") return `linux-${arch}-${Deno.build.target.endsWith("musl") ? "musl" : "gnu"}`;
  return Deno.build.os === "darwin" ? `darwin-${arch}` : `win32-${arch}-msvc`;
}

/**
 * The napi build output: the same cdylib exports the C ABI too. It sits beside the package in
 * a checkout (`npm run build`), and in the platform package (`@lowbit/websockets-<platform>`,
 * a sibling in node_modules) when installed from npm.
 */
function libraryPath(): string {
  const override = Deno.env.get("LOWBIT_WS_LIB");
  if (override) return override;
  const name = `lowbit-websockets.${platform()}.node`;
  const candidates = [`../${name}`, `../../websockets-${platform()}/${name}`]
    .map((path) => new URL(path, import.meta.url).pathname);
  return candidates.find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  }) ?? candidates[0];
}

/** The library's functions (`lbws_*`). */
export const native = Deno.dlopen(libraryPath(), symbols).symbols;

/**
 * The numbers shared with Rust (`crates/node/src/contract.rs`): event kinds, close-state bits,
 * the packed event head's length and the deflate flags, as the library reports them.
 */
export interface Contract {
  EVENT_TEXT: number;
  EVENT_BINARY: number;
  EVENT_CLOSE: number;
  EVENT_PING: number;
  EVENT_PONG: number;
  EVENT_HEAD_LEN: number;
  STATE_CLOSE_SENT: number;
  STATE_CLOSE_RECEIVED: number;
  STATE_FINISHED: number;
  DEFLATE_ON: number;
  DEFLATE_SERVER_NO_CONTEXT_TAKEOVER: number;
  DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER: number;
  DEFLATE_DEFAULT_LEVEL: number;
  DEFLATE_DEFAULT_THRESHOLD: number;
}

/** The contract, read from the library once, when this module loads. */
export const contract: Readonly<Contract> = Object.freeze(
  JSON.parse(new Deno.UnsafePointerView(native.lbws_contract()!).getCString()),
);

/** A length for a `usize` parameter: Deno takes numbers there at run time; its types ask for bigint. */
export const L = (n: number) => n as unknown as bigint;

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();
export const EMPTY = new Uint8Array(0);

/** `len` bytes at `ptr`, without a copy (valid until the library changes them). */
export function view(ptr: Deno.PointerValue, len: number | bigint): Uint8Array {
  const n = Number(len);
  if (ptr === null || n === 0) return EMPTY;
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, n));
}

/** The message of the handle's last error. */
export function errorMessage(h: Deno.PointerValue): string {
  return decoder.decode(view(native.lbws_error_ptr(h), native.lbws_error_len(h)));
}

/** The handle's bytes to write, copied out and then counted as written. */
export function takeOutput(h: Deno.PointerValue): Uint8Array {
  const out = view(native.lbws_output_ptr(h), native.lbws_output_len(h)).slice();
  native.lbws_consume_output(h, L(out.length));
  return out;
}
