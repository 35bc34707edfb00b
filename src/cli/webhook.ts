// `cairn webhook add|ls|rm|deliveries|redeliver`: webhooks, with an admin token in CAIRN_TOKEN.
import { EVENT_KINDS, type EventKind } from '../api/index.ts';
import { type Command, positiveInt, printJson, say, str, strs, table, UsageError } from './common.ts';


function when(iso: string | null | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

function hookId(value: string | undefined): number {
  if (value === undefined) throw new UsageError('missing webhook id');
  const id = positiveInt(value, 'webhook id');
  if (id === undefined) throw new UsageError('missing webhook id');
  return id;
}

export const webhookCommand: Command = {
  name: 'webhook',
  aliases: ['webhooks'],
  synopsis: 'webhook add|ls|ping|rm|deliveries|redeliver …',
  summary: 'manage webhooks (needs an admin token in CAIRN_TOKEN)',
  help: `Subcommands:
  webhook add <url> [--events <kind>]… [--models <pattern>]…
                         POSTs each event to <url>, signed; prints the signing secret once
  webhook ls             webhooks (never their secrets)
  webhook ping <id>      sends a signed test event now; exits 1 unless the receiver answers 2xx
  webhook rm <id>        deletes it and its deliveries
  webhook deliveries <id> [--limit <n>]
                         recent deliveries: state, attempts, last status and error
  webhook redeliver <id> sends its pending and failed deliveries now

Options:
      --events <kind>      publish, alias, unalias or delete (repeatable; default: all)
      --models <pattern>   only models whose name matches, * as a wildcard within one
                           part of a name: acme/* is namespace acme, * every model (repeatable;
                           default: every model)
      --limit <n>          deliveries to show (default 20)`,
  options: {
    events: { type: 'string', multiple: true },
    models: { type: 'string', multiple: true },
    limit: { type: 'string' },
  },
  async run(ctx, args, values) {
    const [sub, arg, extra] = args;
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
    switch (sub) {
      case 'add': {
        if (arg === undefined) throw new UsageError('missing URL');
        const events = strs(values, 'events');
        const isKind = (e: string): e is EventKind => (EVENT_KINDS as readonly string[]).includes(e);
        for (const e of events) if (!isKind(e)) throw new UsageError(`--events takes ${EVENT_KINDS.join(', ')}, not ${JSON.stringify(e)}`);
        const models = strs(values, 'models');
        const created = await ctx.client.createWebhook({ url: arg, events: events.filter(isKind), models });
        if (ctx.json) {
          printJson(ctx, created);
          return 0;
        }
        say(ctx, created.secret);
        ctx.stderr.write(
          `created webhook ${created.id} → ${created.url}: events ${created.events.length > 0 ? created.events.join(' ') : '*'}, models ${created.models.length > 0 ? created.models.join(' ') : '*'}\n` +
            'the line above is the signing secret (X-Cairn-Signature-256 is its HMAC-SHA256 of each body); it is shown only now\n',
        );
        return 0;
      }
      case 'ls':
      case 'list': {
        if (arg !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
        const { webhooks } = await ctx.client.listWebhooks();
        if (ctx.json) {
          printJson(ctx, { webhooks });
          return 0;
        }
        if (webhooks.length === 0) {
          say(ctx, 'no webhooks');
          return 0;
        }
        say(
          ctx,
          table([
            ['ID', 'URL', 'EVENTS', 'MODELS', 'CREATED', 'BY'],
            ...webhooks.map((w) => [String(w.id), w.url, w.events.length > 0 ? w.events.join(',') : '*', w.models.length > 0 ? w.models.join(',') : '*', when(w.created_at), w.created_by]),
          ]),
        );
        return 0;
      }
      case 'ping': {
        const id = hookId(arg);
        const answer = await ctx.client.pingWebhook(id);
        if (ctx.json) printJson(ctx, answer);
        else say(ctx, answer.delivered ? `webhook ${id}: the receiver answered ${String(answer.status)}` : `webhook ${id}: not delivered: ${String(answer.error)}`);
        return answer.delivered ? 0 : 1;
      }
      case 'rm':
      case 'delete': {
        const id = hookId(arg);
        await ctx.client.deleteWebhook(id);
        if (ctx.json) printJson(ctx, { deleted: id });
        else say(ctx, `deleted webhook ${id}`);
        return 0;
      }
      case 'deliveries':
      case 'redeliver': {
        const id = hookId(arg);
        const { deliveries, ...rest } =
          sub === 'redeliver' ? await ctx.client.redeliverWebhook(id) : await ctx.client.webhookDeliveries(id, positiveInt(str(values, 'limit'), '--limit') ?? 20);
        if (ctx.json) {
          printJson(ctx, { ...rest, deliveries });
          return 0;
        }
        if ('requeued' in rest) say(ctx, `requeued ${String(rest.requeued)} deliveries`);
        if (deliveries.length === 0) {
          say(ctx, 'no deliveries');
          return 0;
        }
        say(
          ctx,
          table([
            ['ID', 'EVENT', 'STATE', 'ATTEMPTS', 'LAST STATUS', 'LAST ERROR', 'DELIVERED', 'NEXT TRY'],
            ...deliveries.map((d) => [
              String(d.id),
              String(d.event_id),
              d.state,
              String(d.attempts),
              d.last_status === null ? '-' : String(d.last_status),
              d.last_error ?? '-',
              when(d.delivered_at),
              d.state === 'pending' ? when(d.next_at) : '-',
            ]),
          ]),
        );
        return 0;
      }
      case undefined:
        throw new UsageError('missing subcommand: add, ls, ping, rm, deliveries or redeliver');
      default:
        throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: add, ls, ping, rm, deliveries or redeliver`);
    }
  },
};
