// Deno's built-in WebSocket server (Deno.serve + Deno.upgradeWebSocket) as an echo server,
// for the benchmark. `deno run --allow-net bench/deno-builtin-echo.ts --port PORT`
const port = Number(Deno.args[Deno.args.indexOf("--port") + 1]);
Deno.serve({ port, hostname: "127.0.0.1", onListen: () => console.log(`deno built-in echo on ${port}`) }, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onmessage = (e) => socket.send(e.data);
  return response;
});
