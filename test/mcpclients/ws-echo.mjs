// ws-echo.mjs PORT — a real WebSocket exchange for the WebSocket dissector's
// test (cmd/wirescope/websocket_test.go): the ws server, permessage-deflate
// on for every message, echoes what the ws client sends on
// ws://127.0.0.1:PORT/live?room=7 — three text messages (compressed, the
// later ones against the earlier ones' context), a binary one, a text
// message in two fragments, a ping — and the client closes with 1000.
import { WebSocketServer, WebSocket } from "ws";

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: { threshold: 0 } });
wss.on("connection", (sock) => {
  sock.on("message", (data, isBinary) => sock.send(data, { binary: isBinary }));
});
await new Promise((resolve) => wss.on("listening", resolve));

const ws = new WebSocket(`ws://127.0.0.1:${port}/live?room=7`, { perMessageDeflate: { threshold: 0 } });
await new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); });
const echoes = [];
ws.on("message", (data) => echoes.push(data));
const sent = [];
const send = (data, opts = {}) => new Promise((resolve, reject) => ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
for (let i = 0; i < 3; i++) {
  await send(`hello wirescope ${i}`);
  sent.push(1);
}
await send(Buffer.from([0, 1, 2, 3, 250]), { binary: true });
sent.push(1);
await send("fragment one, ", { fin: false });
await send("fragment two", { fin: true });
sent.push(1);
ws.ping("are you there");
while (echoes.length < sent.length) await new Promise((r) => setTimeout(r, 10));
ws.close(1000, "done");
await new Promise((resolve) => ws.on("close", resolve));
wss.close();
console.log(`done: ${sent.length} messages echoed`);
