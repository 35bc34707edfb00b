// Prometheus metrics, kept in memory per app and rendered in the text
// exposition format (version 0.0.4) without a client library. Request
// metrics are recorded by ./request-log.ts; storage, upload and mirror gauges
// are read from SQLite at scrape time, so they are right after a restart too.
import type { Health } from '../registry/health.ts';

/** Upper bounds (seconds) of the request duration histogram. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}`;
}

function num(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Number.isNaN(n)) return 'NaN';
  return String(n);
}

/** A counter family: label set → value. */
class Counter {
  readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  get(labels: Labels): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const { labels, value } of this.values.values()) out.push(`${this.name}${labelText(labels)} ${num(value)}`);
  }
}

class Histogram {
  readonly values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let entry = this.values.get(key);
    if (!entry) {
      entry = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.values.set(key, entry);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) entry.counts[i]! += 1;
    entry.sum += value;
    entry.count += 1;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const { labels, counts, sum, count } of this.values.values()) {
      this.buckets.forEach((le, i) => out.push(`${this.name}_bucket${labelText({ ...labels, le: num(le) })} ${counts[i]}`));
      out.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${num(sum)}`);
      out.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
  }
}

function gauge(out: string[], name: string, help: string, value: number): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${num(value)}`);
}

export interface RequestSample {
  method: string;
  /** the express route pattern (`/v1/models/:name`), or `unmatched` */
  route: string;
  status: number;
  seconds: number;
  bytesIn: number;
  bytesOut: number;
}

const PROCESS_START_SECONDS = Date.now() / 1000 - process.uptime();

export class Metrics {
  readonly requests = new Counter('cairn_http_requests_total', 'HTTP requests answered, by method, route pattern and status.');
  readonly duration = new Histogram('cairn_http_request_duration_seconds', 'Time from request to the end of the response, by method and route pattern.', DURATION_BUCKETS);
  readonly bytesReceived = new Counter('cairn_http_bytes_received_total', 'Request body bytes received, by method and route pattern.');
  readonly bytesSent = new Counter('cairn_http_bytes_sent_total', 'Response body bytes sent, by method and route pattern.');
  readonly pulls = new Counter('cairn_pulls_total', 'Completed downloads (file GETs, 200 or 206, and archives) by model and resolved version.');

  constructor(private readonly sources: { health: Health; now?: () => number }) {}

  recordRequest(s: RequestSample): void {
    const base = { method: s.method, route: s.route };
    this.requests.inc({ ...base, status: String(s.status) });
    this.duration.observe(base, s.seconds);
    this.bytesReceived.inc(base, s.bytesIn);
    this.bytesSent.inc(base, s.bytesOut);
  }

  recordPull(model: string, version: string): void {
    this.pulls.inc({ model, version });
  }

  /** The whole exposition, `text/plain; version=0.0.4`. */
  render(): string {
    const out: string[] = [];
    this.requests.render(out);
    this.duration.render(out);
    this.bytesReceived.render(out);
    this.bytesSent.render(out);
    this.pulls.render(out);
    const totals = this.sources.health.storageTotals();
    gauge(out, 'cairn_storage_bytes_stored', 'Bytes held in the storage backend (compressed chunks, each stored once).', totals.stored);
    gauge(out, 'cairn_storage_bytes_logical', 'Sum of the file sizes of every live version (before dedup and compression).', totals.logical);
    gauge(out, 'cairn_storage_chunks', 'Chunks recorded in the database.', totals.chunks);
    gauge(out, 'cairn_upload_sessions_open', 'Resumable upload sessions not finished yet.', totals.uploadsOpen);
    gauge(out, 'cairn_webhook_deliveries_pending', 'Webhook deliveries not sent yet (new, or waiting to retry).', totals.webhooksPending);
    gauge(out, 'cairn_webhook_deliveries_failed', 'Webhook deliveries that ran out of attempts (redeliver sends them again).', totals.webhooksFailed);
    const mirror = this.sources.health.mirrorStatus();
    const now = this.sources.now?.() ?? Date.now();
    const oldest = mirror.oldest_pending ? Math.max(0, (now - Date.parse(mirror.oldest_pending)) / 1000) : 0;
    gauge(out, 'cairn_lineage_mirror_pending_events', 'Events not yet written to the lineage git repository.', mirror.pending);
    gauge(out, 'cairn_lineage_mirror_oldest_pending_seconds', 'Age of the oldest event not yet mirrored to git (0: none pending).', oldest);
    gauge(out, 'cairn_lineage_commit_mismatches', 'Events whose recorded commit id the git writer could not reproduce (it stops there until cairn lineage rebuild).', mirror.mismatched_commits);
    gauge(out, 'process_resident_memory_bytes', 'Resident memory size in bytes.', process.memoryUsage.rss());
    gauge(out, 'process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', Math.round(PROCESS_START_SECONDS * 1000) / 1000);
    return `${out.join('\n')}\n`;
  }
}
