/**
 * Peer for `deno task bench:stream`: the least a Deno server can do to fan a frame out to
 * WebSocket viewers — the same 150 KB binary message sent to every connected client 30 times a
 * second, nothing else. The bench measures this process's CPU with 1 and with 10 clients.
 *
 *   deno run --allow-net=127.0.0.1 bench/ws_fanout_server.ts <port> <frame bytes>
 */
const [port, bytes] = Deno.args.map(Number);
const frame = new Uint8Array(bytes ?? 150_000).map((_, i) => (i * 31) & 255);
const sockets = new Set<WebSocket>();
Deno.serve({ hostname: "127.0.0.1", port: port!, onListen: () => console.log("ready") }, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onopen = () => sockets.add(socket);
  socket.onclose = () => sockets.delete(socket);
  return response;
});
setInterval(() => {
  for (const socket of sockets) socket.send(frame);
}, 1000 / 30);
