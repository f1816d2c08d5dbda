/**
 * Peer for `deno task bench:stream`: the least a Deno server can do to fan a frame out to viewers —
 * the same binary message sent to every connected client 30 times a second, nothing else.
 */

/**
 * Usage, and the modes:
 *
 *   deno run --allow-net=127.0.0.1 bench/ws_fanout_server.ts <port> <frame bytes> [ws|tcp]
 *
 * - `ws` (default): a WebSocket binary message per client (`Deno.upgradeWebSocket`, as the platform
 *   sends frames);
 * - `tcp`: the same bytes written to a plain TCP connection, no WebSocket: the kernel's part of a
 *   send, and what a send costs without the runtime's WebSocket layer.
 *
 * The bench measures this process's CPU with 1 and with 10 clients.
 */
const [portArg, bytesArg, mode = "ws"] = Deno.args;
const port = Number(portArg);
const frame = new Uint8Array(Number(bytesArg ?? 150_000)).map((_, i) => (i * 31) & 255);
const FPS = 30;

if (mode === "tcp") {
  const conns = new Map<Deno.Conn, { busy: boolean }>();
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  console.log("ready");
  (async () => {
    for await (const conn of listener) {
      conn.setNoDelay(true);
      conns.set(conn, { busy: false });
    }
  })();
  const writeAll = async (conn: Deno.Conn, state: { busy: boolean }) => {
    state.busy = true;
    try {
      for (let sent = 0; sent < frame.length;) sent += await conn.write(frame.subarray(sent));
    } catch {
      conns.delete(conn);
    } finally {
      state.busy = false;
    }
  };
  setInterval(() => {
    // A client still taking the last frame skips this one, as a slow viewer does.
    for (const [conn, state] of conns) if (!state.busy) writeAll(conn, state);
  }, 1000 / FPS);
} else {
  const sockets = new Set<WebSocket>();
  Deno.serve({ hostname: "127.0.0.1", port, onListen: () => console.log("ready") }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => sockets.add(socket);
    socket.onclose = () => sockets.delete(socket);
    return response;
  });
  setInterval(() => {
    for (const socket of sockets) socket.send(frame);
  }, 1000 / FPS);
}
