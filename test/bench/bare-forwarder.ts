// The floor of what Node can do as a DNS forwarder, for the benchmark only:
// one dgram socket each way, rewrite the ID, map it back, nothing else.
// usage: node bare-forwarder.js LISTEN_PORT BACKEND_PORT
import dgram from 'node:dgram';

const [listenPort, backendPort] = process.argv.slice(2).map(Number) as [number, number];
const clients = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
const upstream = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
const addrs: (string | undefined)[] = new Array(65536);
const ports = new Uint16Array(65536);
const ids = new Uint16Array(65536);
let next = 0;

clients.on('message', (msg, rinfo) => {
  if (msg.length < 12) return;
  const id = next;
  next = (next + 1) & 0xffff;
  addrs[id] = rinfo.address;
  ports[id] = rinfo.port;
  ids[id] = msg.readUInt16BE(0);
  msg.writeUInt16BE(id, 0);
  upstream.send(msg, backendPort, '127.0.0.1');
});

upstream.on('message', (msg) => {
  if (msg.length < 12) return;
  const id = msg.readUInt16BE(0);
  const addr = addrs[id];
  if (addr === undefined) return;
  addrs[id] = undefined;
  msg.writeUInt16BE(ids[id]!, 0);
  clients.send(msg, ports[id]!, addr);
});

upstream.bind(0, '127.0.0.1', () => clients.bind(listenPort, '127.0.0.1', () => process.stdout.write('bare forwarder ready\n')));
process.on('SIGTERM', () => process.exit(0));
