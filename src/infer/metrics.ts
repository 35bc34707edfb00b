// The inference server's Prometheus metrics, in memory, rendered in the text
// exposition format (0.0.4) at /metrics. Per model and version: requests,
// errors, latency and merged batch sizes; per model: load, swap and unload
// events; the cache's bytes. Counters start at zero with the process.

type Labels = Record<string, string>;

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`).join(',')}}`;
}

class Family {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    /** undefined: a counter */
    readonly buckets?: number[],
  ) {}

  add(labels: Labels, value = 1): void {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: (this.buckets ?? []).map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    if (this.buckets) {
      for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]! += 1;
      s.count += 1;
    }
    s.sum += value;
  }

  get(labels: Labels): number {
    return this.series.get(labelText(labels))?.sum ?? 0;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.buckets ? 'histogram' : 'counter'}`);
    for (const { labels, counts, sum, count } of this.series.values()) {
      if (!this.buckets) {
        out.push(`${this.name}${labelText(labels)} ${sum}`);
        continue;
      }
      this.buckets.forEach((le, i) => out.push(`${this.name}_bucket${labelText({ ...labels, le: String(le) })} ${counts[i]}`));
      out.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`, `${this.name}_sum${labelText(labels)} ${sum}`, `${this.name}_count${labelText(labels)} ${count}`);
    }
  }
}

export interface RequestSample {
  model: string;
  version: string;
  protocol: 'tfserving' | 'oip';
  status: number;
  seconds: number;
}

export class InferMetrics {
  private readonly requests = new Family('cairn_infer_requests_total', 'Inference requests (predict, infer) by model, version, protocol and HTTP status.');
  private readonly errors = new Family('cairn_infer_request_errors_total', 'Inference requests answered with an error status, by model, version, protocol and status.');
  private readonly latency = new Family('cairn_infer_request_duration_seconds', 'Inference request latency, body read to response written, by model and version.', LATENCY_BUCKETS);
  private readonly batches = new Family('cairn_infer_batch_size', 'Rows (dim 0 of the inputs) per runtime run, by model and version: above the requests\' own rows when dynamic batching merged them.', BATCH_BUCKETS);
  private readonly events = new Family('cairn_infer_model_events_total', 'Version events by model: load, load_failed, swap (a label moved), unload.');
  private cacheBytes = 0;
  private readonly started = Date.now() / 1000;

  request(s: RequestSample): void {
    const labels = { model: s.model, version: s.version, protocol: s.protocol, status: String(s.status) };
    this.requests.add(labels);
    if (s.status >= 400) this.errors.add(labels);
    this.latency.add({ model: s.model, version: s.version }, s.seconds);
  }

  observeBatch(model: string, version: string, rows: number): void {
    this.batches.add({ model, version }, rows);
  }

  event(model: string, event: 'load' | 'load_failed' | 'swap' | 'unload'): void {
    this.events.add({ model, event });
  }

  eventCount(model: string, event: string): number {
    return this.events.get({ model, event });
  }

  setCacheBytes(bytes: number): void {
    this.cacheBytes = bytes;
  }

  /** The exposition text; `gauges` are read at scrape time. */
  render(gauges: { loaded: Map<string, number>; inflight: number }): string {
    const out: string[] = [];
    for (const f of [this.requests, this.errors, this.latency, this.batches, this.events]) f.render(out);
    out.push('# HELP cairn_infer_versions_loaded Versions loaded (serving or draining), by model.', '# TYPE cairn_infer_versions_loaded gauge');
    for (const [model, n] of gauges.loaded) out.push(`cairn_infer_versions_loaded${labelText({ model })} ${n}`);
    out.push('# HELP cairn_infer_requests_in_flight Inference requests being served.', '# TYPE cairn_infer_requests_in_flight gauge', `cairn_infer_requests_in_flight ${gauges.inflight}`);
    out.push('# HELP cairn_infer_cache_bytes Bytes of model files in the local cache.', '# TYPE cairn_infer_cache_bytes gauge', `cairn_infer_cache_bytes ${this.cacheBytes}`);
    out.push('# HELP process_resident_memory_bytes Resident memory size in bytes.', '# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${process.memoryUsage.rss()}`);
    out.push('# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.', '# TYPE process_start_time_seconds gauge', `process_start_time_seconds ${this.started}`);
    return `${out.join('\n')}\n`;
  }
}
