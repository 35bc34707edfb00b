// Maintenance commands: `gc` and `verify` (admin; they run on the server).
import { parseDuration } from '../durations.ts';
import { type Command, flag, formatBytes, printJson, say, shortDigest, str, table, UsageError } from './common.ts';

function noArgs(args: string[]): void {
  if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
}

export const gcCommand: Command = {
  name: 'gc',
  synopsis: 'gc [--dry-run] [--grace 1h]',
  summary: 'remove chunks no live version uses, abandoned uploads and orphan objects',
  help: `Options:
      --dry-run          report what would be removed and how much, remove nothing
      --grace <time>     keep anything younger than this (default: the server's
                         CAIRN_GC_GRACE, else 1h), so uploads in flight are never
                         robbed; e.g. 0s, 90s, 30m, 1h, 2d
      --upload-ttl <t>   upload sessions idle longer than this are removed
                         (default: the server's CAIRN_UPLOAD_TTL, else 24h)
Objects in storage without a record are removed by a later gc, once they have
been seen unrecorded for at least the grace period.`,
  options: {
    'dry-run': { type: 'boolean', short: 'n' },
    grace: { type: 'string' },
    'upload-ttl': { type: 'string' },
  },
  async run(ctx, args, values) {
    noArgs(args);
    const seconds = (option: string) => {
      const raw = str(values, option);
      if (raw === undefined) return undefined;
      const n = parseDuration(raw);
      if (n === undefined) throw new UsageError(`--${option} must be a duration like 0s, 30m, 1h or 7d, got ${JSON.stringify(raw)}`);
      return n;
    };
    const report = await ctx.client.gc({ dryRun: flag(values, 'dry-run'), graceSeconds: seconds('grace'), uploadTtlSeconds: seconds('upload-ttl') });
    if (ctx.json) {
      printJson(ctx, report);
      return 0;
    }
    const verb = report.dry_run ? 'would free' : 'freed';
    const objects = report.chunks_deleted + report.orphan_objects_deleted;
    say(ctx, `${verb} ${formatBytes(report.bytes_freed)} in ${objects} ${objects === 1 ? 'chunk' : 'chunks'}` +
      (report.orphan_objects_deleted > 0 ? ` (${report.orphan_objects_deleted} without a record)` : ''));
    const more: string[] = [];
    if (report.blobs_deleted > 0) more.push(`${report.blobs_deleted} unused file ${report.blobs_deleted === 1 ? 'record' : 'records'}`);
    if (report.uploads_expired > 0) more.push(`${report.uploads_expired} expired upload ${report.uploads_expired === 1 ? 'session' : 'sessions'}`);
    if (more.length > 0) say(ctx, `${report.dry_run ? 'would remove' : 'removed'} ${more.join(' and ')}`);
    if (report.orphan_objects_pending > 0) {
      say(ctx, `${report.orphan_objects_pending} unrecorded ${report.orphan_objects_pending === 1 ? 'object waits' : 'objects wait'} for the grace period (a later gc removes them)`);
    }
    return 0;
  },
};

export const verifyCommand: Command = {
  name: 'verify',
  synopsis: 'verify [--quick]',
  summary: 'check every chunk of every live version; exit 1 when content is missing or corrupt',
  help: `Options:
      --quick            only check that each chunk is in storage with its recorded
                         size (no download, no digest check)
Reports each damaged file as model, version and path. Exit code 1 when problems
are found.`,
  options: {
    quick: { type: 'boolean' },
  },
  async run(ctx, args, values) {
    noArgs(args);
    const report = await ctx.client.verify({ quick: flag(values, 'quick') });
    if (ctx.json) {
      printJson(ctx, report);
      return report.ok ? 0 : 1;
    }
    const what = `${report.chunks_checked} chunks of ${report.files_checked} files in ${report.versions_checked} versions` +
      (report.quick ? ' (quick: presence only)' : `, ${formatBytes(report.bytes_read)} read`);
    if (report.ok) {
      say(ctx, `ok: ${what}`);
      return 0;
    }
    say(ctx, table([
      ['MODEL', 'VERSION', 'PATH', 'PROBLEM', 'CHUNK'],
      ...report.problems.map((p) => [p.model, p.version, p.path, p.problem, p.chunk ? shortDigest(p.chunk) : '-']),
    ]));
    const files = new Set(report.problems.map((p) => `${p.model}@${p.version}/${p.path}`)).size;
    ctx.stderr.write(`cairn: ${report.problems.length} problems in ${files} ${files === 1 ? 'file' : 'files'} (checked ${what})\n`);
    return 1;
  },
};
