// A TCP proxy that behaves like one full-duplex network link of a given rate
// and round-trip time, for bench/push-pull.ts --link: in production the S3
// server is on other machines, behind a link of finite bandwidth; on the
// bench's box it shares the loopback (and the CPUs) with everything else.
//
//   node --import tsx bench/link-proxy.ts serve --target 127.0.0.1:7480 --link 1gbit[:1ms]
//   node --import tsx bench/link-proxy.ts self-check [--link 1gbit:1ms]
//
// Each direction ("up" = towards the target, "down" = back) has its own token
// bucket of RATE bytes/s shared by all connections, so N parallel connections
// together get RATE, as on a real link. Connections waiting for the link are
// served round-robin, one quantum each, so none starves. Each piece is
// delivered RTT/2 after it passed the bucket (order kept). Backpressure is
// honoured both ways: a connection's source socket is paused while too much of
// it waits for the link, or while the destination's write buffer is full.
// RATE counts TCP payload bytes (no framing: a real 1 GbE link carries about
// 118 MB/s of payload, this one 125 MB/s). Timers have ~1 ms resolution, so a
// one-way delay below ~1 ms comes out at ~1 ms (an RTT below 2 ms at ~2 ms).
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface LinkSpec {
  /** payload bytes per second, each direction */
  bytesPerSec: number;
  /** round-trip time added by the link, ms (each direction delays by half of it) */
  rttMs: number;
  /** as given, e.g. "2.5gbit:1ms" */
  text: string;
}

/** `RATE[:RTT]`: RATE in kbit/mbit/gbit (10^3/10^6/10^9 bits/s) or kB/s, MB/s, GB/s (10^3… bytes/s); RTT in ms (default unit), us or s. */
export function parseLink(text: string): LinkSpec {
  const [rateText, rttText, extra] = text.split(':');
  if (rateText === undefined || extra !== undefined) throw new Error(`--link: expected RATE[:RTT], got ${JSON.stringify(text)}`);
  const rate = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z/]+)\s*$/.exec(rateText);
  if (!rate) throw new Error(`--link: not a rate: ${JSON.stringify(rateText)} (e.g. 1gbit, 2.5gbit, 300MB/s)`);
  const value = Number(rate[1]);
  const unit = rate[2]!;
  const bits = /^([kmg])bit$/i.exec(unit);
  // Bytes need a capital B: "mb/s" is read as megabits by some and megabytes by others.
  const bytes = /^([kKMG])B\/s$/.exec(unit);
  const scale = (prefix: string) => ({ k: 1e3, m: 1e6, g: 1e9 })[prefix.toLowerCase() as 'k' | 'm' | 'g'];
  const bytesPerSec = bits ? (value * scale(bits[1]!)) / 8 : bytes ? value * scale(bytes[1]!) : NaN;
  if (!(bytesPerSec > 0)) throw new Error(`--link: unknown or zero rate ${JSON.stringify(rateText)}; units: kbit, mbit, gbit, kB/s, MB/s, GB/s`);
  let rttMs = 0;
  if (rttText !== undefined) {
    const rtt = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s)?\s*$/.exec(rttText);
    if (!rtt) throw new Error(`--link: not a round-trip time: ${JSON.stringify(rttText)} (e.g. 1ms, 500us)`);
    rttMs = Number(rtt[1]) * { us: 1e-3, µs: 1e-3, ms: 1, s: 1000 }[(rtt[2] ?? 'ms') as 'us' | 'µs' | 'ms' | 's'];
  }
  return { bytesPerSec, rttMs, text };
}

export function describeLink(link: LinkSpec): string {
  return `${link.text} (${(link.bytesPerSec / 1e6).toFixed(1)} MB/s each way, RTT ${link.rttMs > 0 ? `${link.rttMs} ms` : 'none added'})`;
}

/** Tokens the bucket keeps while nobody is waiting: the burst a new sender gets at once. */
const IDLE_BURST = 64 * 1024;
/** Bytes one connection may send per turn before the next waiting connection gets its turn. */
const QUANTUM = 64 * 1024;
/**
 * Bytes a connection may have waiting for the link before its source socket is
 * paused: at least a few timer ticks' worth of the rate, or a single connection
 * would run dry between two wake-ups and get less than RATE.
 */
const MIN_WAITING_LIMIT = 256 * 1024;
const WAITING_LIMIT_MS = 8;
/**
 * While connections wait, the link is busy: time lost to timer resolution
 * (~1 ms, i.e. 125 KB at 1 gbit) or to a late event loop is owed to them, up
 * to this much of it. Capping at IDLE_BURST instead would make the link slower
 * than RATE.
 */
const BUSY_CATCH_UP_MS = 20;

/** One direction of the link: a token bucket shared by every connection sending that way. */
class LinkDirection {
  /** payload bytes passed so far */
  bytes = 0;
  /** see WAITING_LIMIT_MS */
  readonly waitingLimit: number;
  private tokens = IDLE_BURST;
  private last = performance.now();
  private readonly waiting: Pipe[] = [];
  private timer: NodeJS.Timeout | undefined;
  private serving = false;
  private readonly bytesPerMs: number;

  constructor(bytesPerSec: number) {
    this.bytesPerMs = bytesPerSec / 1000;
    this.waitingLimit = Math.max(MIN_WAITING_LIMIT, Math.round(this.bytesPerMs * WAITING_LIMIT_MS));
  }

  private refill(): void {
    const now = performance.now();
    const cap = this.waiting.length > 0 ? Math.max(IDLE_BURST, this.bytesPerMs * BUSY_CATCH_UP_MS) : IDLE_BURST;
    this.tokens = Math.min(cap, this.tokens + (now - this.last) * this.bytesPerMs);
    this.last = now;
  }

  /** `pipe` has bytes waiting: it joins the end of the round-robin queue. */
  enqueue(pipe: Pipe): void {
    if (pipe.queued) return;
    this.refill(); // the time up to now was idle if nobody was waiting
    pipe.queued = true;
    this.waiting.push(pipe);
    this.serve();
  }

  remove(pipe: Pipe): void {
    if (!pipe.queued) return;
    pipe.queued = false;
    const i = this.waiting.indexOf(pipe);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting.length = 0;
  }

  private serve(): void {
    if (this.timer || this.serving) return; // a wake-up is scheduled, or we are inside this loop already
    this.serving = true;
    try {
      this.refill();
      while (this.waiting.length > 0) {
        const pipe = this.waiting[0]!;
        const want = Math.min(QUANTUM, pipe.waitingBytes);
        if (this.tokens < want) {
          const waitMs = (want - this.tokens) / this.bytesPerMs;
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.serve();
          }, Math.max(1, Math.ceil(waitMs)));
          return;
        }
        this.tokens -= want;
        this.bytes += want;
        this.waiting.shift();
        pipe.queued = false;
        pipe.transmit(want);
        if (pipe.waitingBytes > 0) {
          pipe.queued = true;
          this.waiting.push(pipe); // next turn, after everybody else waiting
        }
      }
    } finally {
      this.serving = false;
    }
  }
}

/** One connection's bytes in one direction: source socket → link → destination socket. */
class Pipe {
  /** in its direction's round-robin queue */
  queued = false;
  /** bytes read from the source that have not passed the link yet */
  waitingBytes = 0;
  /** everything the source sent was delivered and the destination ended */
  finished = false;
  private readonly waiting: Buffer[] = [];
  /** passed the link, to be delivered at `due` (performance.now() ms) */
  private readonly onTheWire: Array<{ due: number; data: Buffer }> = [];
  private deliveryTimer: NodeJS.Timeout | undefined;
  private sourceEnded = false;
  private closed = false;
  private readonly pausedBy = new Set<'link' | 'destination'>();

  constructor(
    private readonly source: net.Socket,
    private readonly destination: net.Socket,
    private readonly direction: LinkDirection,
    private readonly delayMs: number,
  ) {
    source.on('data', (data: Buffer) => {
      if (this.closed) return;
      this.waiting.push(data);
      this.waitingBytes += data.length;
      if (this.waitingBytes >= direction.waitingLimit) this.pause('link');
      direction.enqueue(this);
    });
    source.on('end', () => {
      this.sourceEnded = true;
      this.finishIfDone();
    });
    destination.on('drain', () => this.resume('destination'));
  }

  /** `n` waiting bytes pass the link now; they reach the destination `delayMs` later. */
  transmit(n: number): void {
    const due = performance.now() + this.delayMs;
    for (let left = n; left > 0; ) {
      const head = this.waiting[0]!;
      let piece: Buffer;
      if (head.length <= left) {
        piece = head;
        this.waiting.shift();
      } else {
        piece = head.subarray(0, left);
        this.waiting[0] = head.subarray(left);
      }
      left -= piece.length;
      this.waitingBytes -= piece.length;
      if (this.delayMs > 0) this.onTheWire.push({ due, data: piece });
      else this.deliver(piece);
    }
    if (this.waitingBytes < this.direction.waitingLimit) this.resume('link');
    if (this.delayMs > 0) this.scheduleDelivery();
    else this.finishIfDone();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.deliveryTimer);
    this.direction.remove(this);
    this.waiting.length = 0;
    this.onTheWire.length = 0;
    this.waitingBytes = 0;
  }

  private deliver(data: Buffer): void {
    if (this.closed || this.destination.destroyed) return;
    if (!this.destination.write(data)) this.pause('destination');
  }

  private scheduleDelivery(): void {
    if (this.deliveryTimer || this.onTheWire.length === 0) return;
    this.deliveryTimer = setTimeout(() => {
      this.deliveryTimer = undefined;
      // Everything due within the timer's resolution goes in one write batch.
      const now = performance.now() + 0.5;
      this.destination.cork();
      while (this.onTheWire.length > 0 && this.onTheWire[0]!.due <= now) this.deliver(this.onTheWire.shift()!.data);
      this.destination.uncork();
      this.scheduleDelivery();
      this.finishIfDone();
    }, Math.max(0, this.onTheWire[0]!.due - performance.now()));
  }

  private finishIfDone(): void {
    if (this.finished || this.closed || !this.sourceEnded || this.waitingBytes > 0 || this.onTheWire.length > 0) return;
    this.finished = true;
    this.destination.end();
  }

  private pause(reason: 'link' | 'destination'): void {
    this.pausedBy.add(reason);
    this.source.pause();
  }

  private resume(reason: 'link' | 'destination'): void {
    if (!this.pausedBy.delete(reason) || this.pausedBy.size > 0 || this.closed) return;
    this.source.resume();
  }
}

export interface LinkProxy {
  host: string;
  port: number;
  /** payload bytes carried so far: up = towards the target, down = back */
  stats(): { up: number; down: number };
  close(): Promise<void>;
}

/** Listens on `listenHost`:<free port> and forwards every connection to `target` through one shaped link. */
export async function startLinkProxy(target: { host: string; port: number }, link: LinkSpec, listenHost = '127.0.0.1'): Promise<LinkProxy> {
  const up = new LinkDirection(link.bytesPerSec);
  const down = new LinkDirection(link.bytesPerSec);
  const oneWayMs = link.rttMs / 2;
  const connections = new Set<() => void>();

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    const toTarget = new Pipe(client, upstream, up, oneWayMs);
    const toClient = new Pipe(upstream, client, down, oneWayMs);
    let clientClosed = false;
    let upstreamClosed = false;
    const destroy = () => {
      connections.delete(destroy);
      toTarget.close();
      toClient.close();
      client.destroy();
      upstream.destroy();
    };
    connections.add(destroy);
    client.on('error', destroy);
    upstream.on('error', destroy);
    // A side that closed while bytes for it were still on their way: the connection is broken.
    // Otherwise wait for the other side (it ends once what is on the way to it arrived).
    client.on('close', () => {
      clientClosed = true;
      if (!toClient.finished || upstreamClosed) destroy();
    });
    upstream.on('close', () => {
      upstreamClosed = true;
      if (!toTarget.finished || clientClosed) destroy();
    });
  });
  server.listen(0, listenHost);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: listenHost,
    port,
    stats: () => ({ up: up.bytes, down: down.bytes }),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const destroy of [...connections]) destroy();
      up.stop();
      down.stop();
      await closed;
    },
  };
}

// ---- command line: serve (for push-pull.ts, which runs it as a child) and self-check ----

/** Messages exchanged with a parent over the IPC channel. */
export type LinkProxyMessage =
  | { type: 'listening'; port: number }
  /** bytes carried so far each way, and the proxy process's CPU time so far (µs, user + system) */
  | { type: 'stats'; up: number; down: number; cpuMicros: number };

async function serve(targetText: string, link: LinkSpec): Promise<void> {
  const m = /^(.+):(\d+)$/.exec(targetText);
  if (!m) throw new Error(`--target: expected HOST:PORT, got ${JSON.stringify(targetText)}`);
  const proxy = await startLinkProxy({ host: m[1]!, port: Number(m[2]) }, link);
  const stop = () => void proxy.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  if (process.send) {
    // Run by a parent: it decides when to stop (Ctrl-C in a terminal reaches us too, and the
    // parent still needs the link while it cleans up); it going away stops us.
    process.on('SIGINT', () => {});
    process.on('disconnect', stop);
    process.on('message', (msg: { type?: string }) => {
      if (msg?.type !== 'stats') return;
      const cpu = process.cpuUsage();
      process.send!({ type: 'stats', ...proxy.stats(), cpuMicros: cpu.user + cpu.system } satisfies LinkProxyMessage);
    });
    process.send({ type: 'listening', port: proxy.port } satisfies LinkProxyMessage);
  } else {
    process.on('SIGINT', stop);
    process.stdout.write(`link proxy ${describeLink(link)}: 127.0.0.1:${proxy.port} → ${targetText}\n`);
  }
}

/**
 * Measures the proxy against a local TCP source/sink (no S3): one connection
 * each way, six at once each way (shared rate, fairness), both directions at once
 * (full duplex), and the round-trip time of small messages.
 */
async function selfCheck(link: LinkSpec): Promise<boolean> {
  const block = Buffer.alloc(64 * 1024, 0x5a);
  // Each connection says what it wants in its first line: "down N" (send me N bytes), "up" (count what I send), "ping".
  const sink = net.createServer((socket) => {
    let head = '';
    const onData = (data: Buffer) => {
      head += data.toString('latin1');
      const nl = head.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onData);
      const [mode, arg] = head.slice(0, nl).split(' ');
      const rest = Buffer.from(head.slice(nl + 1), 'latin1');
      if (mode === 'down') {
        let left = Number(arg);
        const send = () => {
          while (left > 0) {
            const piece = left >= block.length ? block : block.subarray(0, left);
            left -= piece.length;
            if (!socket.write(piece)) return void socket.once('drain', send);
          }
          socket.end();
        };
        send();
      } else if (mode === 'up') {
        let n = rest.length;
        socket.on('data', (d: Buffer) => (n += d.length));
        socket.on('end', () => socket.end(`${n}\n`));
      } else {
        if (rest.length) socket.write(rest);
        socket.on('data', (d: Buffer) => socket.write(d));
        socket.on('end', () => socket.end());
      }
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const proxy = await startLinkProxy({ host: '127.0.0.1', port: (sink.address() as net.AddressInfo).port }, link);
  const connect = async () => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port, noDelay: true });
    await once(socket, 'connect');
    return socket;
  };
  /** Receives `bytes`; resolves with the seconds from the request until the last byte. */
  const downOne = async (bytes: number): Promise<number> => {
    const socket = await connect();
    const t0 = performance.now();
    socket.write(`down ${bytes}\n`);
    let n = 0;
    for await (const d of socket as AsyncIterable<Buffer>) n += d.length;
    if (n !== bytes) throw new Error(`self-check: received ${n} of ${bytes} bytes`);
    return (performance.now() - t0) / 1000;
  };
  /** Sends `bytes`; resolves with the seconds until the sink confirmed them all. */
  const upOne = async (bytes: number): Promise<number> => {
    const socket = await connect();
    const t0 = performance.now();
    socket.write('up\n');
    for (let left = bytes; left > 0; ) {
      const piece = left >= block.length ? block : block.subarray(0, left);
      left -= piece.length;
      if (!socket.write(piece)) await once(socket, 'drain');
    }
    socket.end();
    let reply = '';
    for await (const d of socket as AsyncIterable<Buffer>) reply += d.toString();
    if (Number(reply.trim()) !== bytes) throw new Error(`self-check: sink counted ${reply.trim()} of ${bytes} bytes`);
    return (performance.now() - t0) / 1000;
  };
  const rate = link.bytesPerSec;
  const bytes = Math.max(1 << 20, Math.round(rate * 2)); // about 2 s per test
  const mbps = (n: number, s: number) => n / 1e6 / s;
  const lines: string[] = [];
  let ok = true;
  const check = (what: string, measured: number, expected: number, low: number, high: number, digits = 1) => {
    const pass = measured >= low * expected && measured <= high * expected;
    ok &&= pass;
    lines.push(`${what.padEnd(44)} ${measured.toFixed(digits).padStart(8)}   expected ${expected.toFixed(digits)} (${low}–${high}×)  ${pass ? 'ok' : 'NOT OK'}`);
  };
  const rateMB = rate / 1e6;
  try {
    check('1 connection down, MB/s', mbps(bytes, await downOne(bytes)), rateMB, 0.9, 1.02);
    check('1 connection up, MB/s', mbps(bytes, await upOne(bytes)), rateMB, 0.9, 1.02);
    const t0 = performance.now();
    const each = Math.round(bytes / 6);
    const times = await Promise.all(Array.from({ length: 6 }, () => downOne(each)));
    const all = (performance.now() - t0) / 1000;
    check('6 connections down together, MB/s in all', mbps(6 * each, all), rateMB, 0.9, 1.02);
    // Round-robin: equal transfers finish together; a starved one would finish last, alone.
    check('  first done / last done (fairness)', Math.min(...times) / Math.max(...times), 1, 0.8, 1, 2);
    const t1 = performance.now();
    const upTimes = await Promise.all(Array.from({ length: 6 }, () => upOne(each)));
    const allUp = (performance.now() - t1) / 1000;
    check('6 connections up together, MB/s in all', mbps(6 * each, allUp), rateMB, 0.9, 1.02);
    check('  first done / last done (fairness)', Math.min(...upTimes) / Math.max(...upTimes), 1, 0.8, 1, 2);
    const [upS, downS] = await Promise.all([upOne(bytes), downOne(bytes)]);
    check('full duplex: up, MB/s', mbps(bytes, upS), rateMB, 0.9, 1.02);
    check('full duplex: down, MB/s', mbps(bytes, downS), rateMB, 0.9, 1.02);
    const socket = await connect();
    socket.write('ping\n');
    const rtts: number[] = [];
    for (let i = 0; i < 21; i++) {
      const t = performance.now();
      socket.write('x');
      await once(socket, 'data');
      rtts.push(performance.now() - t);
    }
    socket.end();
    rtts.sort((a, b) => a - b);
    const median = rtts[10]!;
    // Timer resolution adds up to ~1 ms per direction.
    const pass = median >= link.rttMs * 0.9 && median <= link.rttMs + 3;
    ok &&= pass;
    lines.push(`${'round trip of 1 byte, median ms'.padEnd(44)} ${median.toFixed(2).padStart(8)}   expected ${link.rttMs} (+ up to ~2 ms of timer resolution)  ${pass ? 'ok' : 'NOT OK'}`);
  } finally {
    await proxy.close();
    sink.close();
  }
  process.stdout.write(`link proxy self-check, ${describeLink(link)}, ${(bytes / 1e6).toFixed(0)} MB per test\n${lines.join('\n')}\n${ok ? 'PASS' : 'FAIL'}\n`);
  return ok;
}

const USAGE = `usage: node --import tsx bench/link-proxy.ts serve --target HOST:PORT --link RATE[:RTT]
       node --import tsx bench/link-proxy.ts self-check [--link RATE[:RTT]]   (default 1gbit:1ms)
RATE: kbit, mbit, gbit, kB/s, MB/s, GB/s (decimal); RTT: ms (default), us, s
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { target: { type: 'string' }, link: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const command = positionals[0];
  if (values.help || (command !== 'serve' && command !== 'self-check')) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (command === 'self-check') return (await selfCheck(parseLink(values.link ?? '1gbit:1ms'))) ? 0 : 1;
  if (!values.target || !values.link) throw new Error('serve needs --target and --link');
  await serve(values.target, parseLink(values.link));
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => {
      if (code !== 0) process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`link-proxy: ${err.message}\n`);
      process.exitCode = 2;
    },
  );
}
