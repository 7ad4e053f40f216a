// Echo server for Deno: `deno run --allow-ffi --allow-net --allow-read --allow-env
// examples/echo-server-deno.ts --port PORT [--deflate] [--napi] [--max-payload BYTES]`.
// Default: the Deno FFI module (deno/mod.ts, Deno.dlopen). `--napi`: the npm package
// (@lowbit/websockets) loaded through Deno's Node-API support instead.
const args = Deno.args;
const flag = (name: string) => args.includes(name);
const value = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i !== -1 && i + 1 < args.length ? args[i + 1] : fallback;
};
const port = Number(value("--port", "9001"));
const hostname = value("--host", "127.0.0.1");
const deflate = flag("--deflate");
const maxPayload = Number(value("--max-payload", String(64 * 1024 * 1024)));

if (flag("--napi")) {
  const { WebSocketServer } = await import("npm:@lowbit/websockets");
  const wss = new WebSocketServer({ port, host: hostname, perMessageDeflate: deflate, maxPayload });
  // deno-lint-ignore no-explicit-any
  wss.on("connection", (ws: any) => {
    ws.on("message", (data: Uint8Array, isBinary: boolean) => ws.send(data, { binary: isBinary }));
    ws.on("error", () => {});
  });
  wss.on("listening", () => console.log(`echo server (npm package via Node-API) on ws://${hostname}:${port}`));
} else {
  const { serve } = await import("../deno/mod.ts");
  serve({
    port,
    hostname,
    perMessageDeflate: deflate,
    maxPayload,
    onListen: (a) => console.log(`echo server (Deno FFI) on ws://${a.hostname}:${a.port}${deflate ? " (permessage-deflate)" : ""}`),
  }, (ws) => {
    ws.on("message", (data, isBinary) => {
      ws.send(data, { binary: isBinary }).catch(() => {});
    });
  });
}
