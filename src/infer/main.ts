// `cairn infer`, wired: a client of the registry's REST API, the local file
// cache, the ONNX Runtime workers, the served models, the HTTP server, and
// what keeps the models current — a poll of the registry every few seconds,
// and the registry's webhook, which makes a change arrive at once.
import { readFileSync } from 'node:fs';
import { CairnClient } from '../client.ts';
import type { Logger } from '../log.ts';
import { FileCache } from './file-cache.ts';
import { InferMetrics } from './metrics.ts';
import type { InferOptions } from './options.ts';
import { InferenceRuntime } from './runtime.ts';
import { ServedModel } from './served-model.ts';
import { startHttpServer, WEBHOOK_PATH } from './server.ts';

export interface RunningInfer {
  url: string;
  port: number;
  models: ReadonlyMap<string, ServedModel>;
  close(): Promise<void>;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export async function startInfer(options: InferOptions, log: Logger): Promise<RunningInfer> {
  const client = new CairnClient({ url: options.registryUrl, token: options.token, userAgent: 'cairn-infer' });
  const cache = await FileCache.open(options.cacheDir);
  const runtime = await InferenceRuntime.start({ workers: options.workers, threads: options.threads });
  const metrics = new InferMetrics();
  metrics.setCacheBytes(cache.size);
  const models = new Map(options.models.map((m) => [m.name, new ServedModel(m, { client, cache, runtime, metrics, log })]));
  const refreshAll = () => Promise.all([...models.values()].map((m) => m.refresh()));

  let webhookSecret = options.webhookSecret;
  const server = await startHttpServer({
    host: options.host,
    port: options.port,
    maxBodyBytes: options.maxBodyBytes,
    models,
    metrics,
    log,
    version: packageVersion(),
    webhookSecret: () => webhookSecret,
    onWebhook: ({ model }) => void (model ? models.get(model)!.refresh() : refreshAll()),
  });
  log.info('inference server listening', { url: server.url, registry: options.registryUrl, models: options.models.map((m) => (m.ref ? `${m.name}@${m.ref}` : m.name)), cache: options.cacheDir });

  let webhookId: number | undefined;
  if (options.webhookUrl) {
    try {
      const hook = await client.createWebhook({ url: options.webhookUrl, models: [...models.keys()] });
      webhookId = hook.id;
      webhookSecret = hook.secret;
      log.info('webhook registered at the registry', { id: hook.id, url: options.webhookUrl });
    } catch (err) {
      log.warn('could not register the webhook; polling only', { url: options.webhookUrl, error: (err as Error).message, poll_seconds: options.pollSeconds });
    }
    if (!options.webhookUrl.replace(/\/+$/, '').endsWith(WEBHOOK_PATH)) log.warn(`the webhook URL should end in ${WEBHOOK_PATH}`, { url: options.webhookUrl });
  }

  await refreshAll();
  const poll = setInterval(() => void refreshAll(), options.pollSeconds * 1000);

  return {
    url: server.url,
    port: server.port,
    models,
    async close() {
      clearInterval(poll);
      if (webhookId !== undefined) {
        await client.deleteWebhook(webhookId).catch((err: unknown) => log.warn('could not remove the webhook', { id: webhookId, error: (err as Error).message }));
      }
      await server.close();
      await Promise.all([...models.values()].map((m) => m.close()));
      await runtime.close();
    },
  };
}
