// The Deno FFI module (deno/mod.ts over Deno.dlopen) as installed: it finds the library in the
// platform package, and a server and a client of it exchange a message with deflate.
import { connect, serve } from "@lowbit/websockets/deno";

const message = "Deno.dlopen and permessage-deflate, repeated. ".repeat(1000);
const server = serve({ hostname: "127.0.0.1", port: 0, perMessageDeflate: true }, (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
const ws = await connect(`ws://127.0.0.1:${server.addr.port}/`, { perMessageDeflate: true });
const echoed = new Promise<string>((resolve) => ws.on("message", (data) => resolve(new TextDecoder().decode(data))));
await ws.send(message);
if (await echoed !== message) throw new Error("the echo differs from the message");
if (!ws.extensions.includes("permessage-deflate")) throw new Error(`no deflate: ${ws.extensions}`);
await ws.close(1000);
server.close();
await server.finished;
console.log(`Deno FFI: ${message.length} B message echoed with ${ws.extensions}`);
