// `cairn token create|ls|revoke`: API tokens, with an admin token in CAIRN_TOKEN.
import { check, type Command, positiveInt, printJson, say, str, strs, table, UsageError } from './common.ts';
import { checkScope, checkTokenName } from '../access.ts';

function day(iso: string | null | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

export const tokenCommand: Command = {
  name: 'token',
  aliases: ['tokens'],
  synopsis: 'token create|ls|revoke [name]',
  summary: 'manage API tokens (needs an admin token in CAIRN_TOKEN)',
  help: `Subcommands:
  token create <name> --scope read|write|admin [--models <pattern>]… [--expires-days <n>]
                         prints the new token once; it cannot be shown again
  token ls               active tokens (never their secrets)
  token revoke <name>    the token stops working at once

Options:
      --scope <s>          read, write (includes read) or admin (includes both)
      --models <pattern>   only models whose name matches, * as a wildcard within one
                           part of a name: acme/* is namespace acme, * every model (repeatable;
                           default: every model)
      --expires-days <n>   the token stops working after n days`,
  options: {
    scope: { type: 'string' },
    models: { type: 'string', multiple: true },
    'expires-days': { type: 'string' },
  },
  async run(ctx, args, values) {
    const [sub, name, extra] = args;
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
    switch (sub) {
      case 'create': {
        if (name === undefined) throw new UsageError('missing token name');
        check(() => checkTokenName(name));
        const scope = str(values, 'scope');
        if (scope === undefined) throw new UsageError('--scope is required: read, write or admin');
        check(() => checkScope(scope));
        const models = strs(values, 'models');
        const created = await ctx.client.createToken({
          name,
          scopes: [scope as 'read' | 'write' | 'admin'],
          models: models.length > 0 ? models : undefined,
          expires_in_days: positiveInt(str(values, 'expires-days'), '--expires-days'),
        });
        if (ctx.json) {
          printJson(ctx, created);
          return 0;
        }
        say(ctx, created.token);
        ctx.stderr.write(
          `created token ${created.name}: scope ${created.scope}, models ${created.models.length > 0 ? created.models.join(' ') : '*'}` +
            `${created.expires_at ? `, expires ${day(created.expires_at)}` : ''}\nthis is the only time the token is shown: store it now\n`,
        );
        return 0;
      }
      case 'ls':
      case 'list': {
        if (name !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(name)}`);
        const { tokens } = await ctx.client.listTokens();
        if (ctx.json) {
          printJson(ctx, { tokens });
          return 0;
        }
        if (tokens.length === 0) {
          say(ctx, 'no tokens');
          return 0;
        }
        say(
          ctx,
          table([
            ['NAME', 'PREFIX', 'SCOPE', 'MODELS', 'CREATED', 'BY', 'LAST USED', 'EXPIRES'],
            ...tokens.map((t) => [t.name, `${t.prefix}…`, t.scope, t.models.length > 0 ? t.models.join(',') : '*', day(t.created_at), t.created_by, day(t.last_used_at), day(t.expires_at)]),
          ]),
        );
        return 0;
      }
      case 'revoke':
      case 'rm': {
        if (name === undefined) throw new UsageError('missing token name');
        check(() => checkTokenName(name));
        await ctx.client.revokeToken(name);
        if (ctx.json) printJson(ctx, { revoked: name });
        else say(ctx, `revoked token ${name}`);
        return 0;
      }
      case undefined:
        throw new UsageError('missing subcommand: create, ls or revoke');
      default:
        throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: create, ls or revoke`);
    }
  },
};
