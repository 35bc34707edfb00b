// The `cairn` command line: `serve` runs the server; the other commands talk
// to one over HTTP (CAIRN_URL, default http://127.0.0.1:7070; --url overrides;
// CAIRN_TOKEN is sent as a bearer token). The commands live in src/cli/; this
// file parses the command line, runs one, and turns failures into exit codes:
// 0 ok, 1 failure, 2 usage.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CairnClient, ClientError, DEFAULT_URL } from './client.ts';
import { aliasCommand, describeCommand, logCommand, lsCommand, rmCommand, showCommand, diffCommand, unaliasCommand } from './cli/browse.ts';
import { deriveCommand } from './cli/derive.ts';
import { CliError, type Command, type Context, type OptionsConfig, type OptionValues, UsageError } from './cli/common.ts';
import { pullCommand } from './cli/pull.ts';
import { pushCommand } from './cli/push.ts';
import { tokenCommand } from './cli/token.ts';
import { webhookCommand } from './cli/webhook.ts';
import { gcCommand, verifyCommand } from './cli/maintenance.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { createLogger, type Logger } from './log.ts';

const COMMANDS: Command[] = [pushCommand, pullCommand, lsCommand, showCommand, diffCommand, describeCommand, logCommand, aliasCommand, unaliasCommand, rmCommand, deriveCommand, tokenCommand, webhookCommand, gcCommand, verifyCommand];

const GLOBAL_OPTIONS: OptionsConfig = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const USAGE = `usage: cairn <command> [options]

  serve                              run the server (configured by CAIRN_* variables)
  infer [<name>[@<ref>]…]            serve ONNX models from the registry for inference
                                     (TF Serving REST and Open Inference Protocol, port 8500;
                                     cairn infer --help)
  lineage rebuild                    rebuild <data dir>/lineage.git from the database alone
                                     (same commit ids; run it with the server stopped)
${COMMANDS.map((c) => (c.synopsis.length > 34 ? `  ${c.synopsis}\n${' '.repeat(37)}${c.summary}` : `  ${c.synopsis.padEnd(34)} ${c.summary}`)).join('\n')}
  help [command]                     this text, or one command's options

Options for every client command:
  --url <url>    the server (default $CAIRN_URL, else ${DEFAULT_URL})
  --json         print one JSON document on stdout, no progress
  -h, --help     the command's options

Environment: CAIRN_URL, CAIRN_TOKEN (sent as a bearer token); for serve:
CAIRN_DATA_DIR, CAIRN_HOST, CAIRN_PORT, CAIRN_S3_*, CAIRN_AUTH, CAIRN_ANONYMOUS_READ,
CAIRN_MAX_UPLOAD_BYTES, CAIRN_RATE_LIMIT, CAIRN_UNSAFE.
`;

function commandHelp(c: Command): string {
  return `usage: cairn ${c.synopsis} [--url <url>] [--json]\n\n${c.summary}\n${c.help ? `\n${c.help}\n` : ''}`;
}

/** The server-side configuration, or undefined after reporting why it is invalid. */
function configOrReport(io: Io): Config | undefined {
  try {
    return loadConfig(io.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`cairn: ${err.message}\n`);
    return undefined;
  }
}

/** Resolves once SIGINT or SIGTERM has closed `running`. */
function closeOnSignal(log: Logger, running: { close(): Promise<void> }): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('shutting down', { signal });
      running.close().then(resolve, resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

async function serve(io: Io): Promise<number> {
  const log = createLogger();
  const config = configOrReport(io);
  if (!config) return 2;
  // loaded only here: client commands start fast without the server's modules
  const { startServer } = await import('./main.ts');
  const running = await startServer(config, log);
  // What npm start and bin/cairn.js's shebang give the server (see there).
  if (!process.execArgv.some((flag) => flag.startsWith('--max-semi-space-size'))) {
    log.warn('node runs without --max-semi-space-size=2 (npm start and bin/cairn.js give it): expect ~30 MiB more memory', { exec_argv: process.execArgv });
  }
  if (process.platform === 'linux' && process.env.MALLOC_MMAP_THRESHOLD_ === undefined) {
    log.warn('MALLOC_MMAP_THRESHOLD_ is not set (npm start and bin/cairn.js set 1048576): glibc will keep freed chunk buffers, expect 50-100 MiB more memory');
  }
  await closeOnSignal(log, running);
  return 0;
}

/** `cairn infer`: the inference server, a separate process and a client of the registry. */
async function infer(io: Io, args: string[]): Promise<number> {
  // loaded only here: the other commands never load ONNX Runtime
  const { INFER_USAGE, InferUsageError, parseInferOptions } = await import('./infer/options.ts');
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout.write(INFER_USAGE);
    return 0;
  }
  let options;
  try {
    options = parseInferOptions(args, io.env, (file) => readFileSync(file, 'utf8'), io.cwd);
  } catch (err) {
    if (!(err instanceof InferUsageError)) throw err;
    io.stderr.write(`cairn infer: ${err.message}\n\n${INFER_USAGE}`);
    return 2;
  }
  const log = createLogger();
  const { startInfer } = await import('./infer/main.ts');
  const running = await startInfer(options, log);
  await closeOnSignal(log, running);
  return 0;
}

/** `cairn lineage rebuild`: works on the data dir directly, like serve. */
async function lineage(io: Io, args: string[]): Promise<number> {
  const json = args.includes('--json');
  const sub = args.filter((a) => a !== '--json');
  if (sub.length !== 1 || sub[0] !== 'rebuild') {
    io.stderr.write('usage: cairn lineage rebuild [--json]\n');
    return 2;
  }
  const config = configOrReport(io);
  if (!config) return 2;
  // loaded only here: client commands start fast without the server's modules
  const { rebuildLineage } = await import('./main.ts');
  const doc = await rebuildLineage(config, createLogger({ silent: true }));
  if (json) io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  else {
    io.stdout.write(`rebuilt ${doc.gitdir}: ${doc.events} events, head ${doc.head ?? '(empty)'}, ${doc.seconds.toFixed(1)} s\n`);
    if (doc.mismatched > 0) io.stdout.write(`${doc.mismatched} commit ids differ from the ones recorded before (now updated)\n`);
  }
  return 0;
}

export interface Io {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream | NodeJS.WritableStream;
  cwd: string;
}

/** Global options may also come before the command: `cairn --url X ls`. */
function splitCommand(argv: string[]): { command: string | undefined; rest: string[] } {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return { command: 'help', rest: argv.slice(i + 1) };
    if (arg === '--url' && i + 1 < argv.length) {
      leading.push(arg, argv[i + 1]!);
      i += 2;
    } else {
      leading.push(arg);
      i += 1;
    }
  }
  return { command: argv[i], rest: [...leading, ...argv.slice(i + 1)] };
}

function describe(err: unknown): { code: string; message: string; json: unknown } {
  if (err instanceof ClientError || err instanceof CliError) return { code: err.code, message: err.message, json: err.toJSON() };
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : 'ERROR';
  const message = e instanceof Error ? e.message : String(err);
  return { code, message, json: { error: { code, message } } };
}

export async function main(argv: string[], io: Partial<Io> = {}): Promise<number> {
  const { env = process.env, stdout = process.stdout, stderr = process.stderr, cwd = process.cwd() } = io;
  const { command, rest } = splitCommand(argv);
  const find = (name: string | undefined) => COMMANDS.find((c) => c.name === name || c.aliases?.includes(name ?? ''));

  switch (command) {
    case 'serve':
      return serve({ env, stdout, stderr, cwd });
    case 'lineage':
      return lineage({ env, stdout, stderr, cwd }, rest);
    case 'infer':
      return infer({ env, stdout, stderr, cwd }, rest);
    case undefined:
      stderr.write(USAGE);
      return 2;
    case 'help': {
      const topic = rest.find((a) => !a.startsWith('-'));
      if (topic === undefined) {
        stdout.write(USAGE);
        return 0;
      }
      if (topic === 'infer') return infer({ env, stdout, stderr, cwd }, ['--help']);
      const c = find(topic);
      if (!c) {
        stderr.write(`cairn: unknown command ${JSON.stringify(topic)}\n${USAGE}`);
        return 2;
      }
      stdout.write(commandHelp(c));
      return 0;
    }
  }
  const cmd = find(command);
  if (!cmd) {
    stderr.write(`cairn: unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return 2;
  }

  let values: OptionValues;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...cmd.options }, allowPositionals: true, strict: true });
    values = parsed.values as OptionValues;
    positionals = parsed.positionals;
  } catch (err) {
    stderr.write(`cairn: ${(err as Error).message}\n${commandHelp(cmd)}`);
    return 2;
  }
  if (values.help === true) {
    stdout.write(commandHelp(cmd));
    return 0;
  }
  const json = values.json === true;
  const url = typeof values.url === 'string' ? values.url : env.CAIRN_URL || DEFAULT_URL;
  let client: CairnClient;
  try {
    client = new CairnClient({ url, token: env.CAIRN_TOKEN, userAgent: 'cairn-cli' });
  } catch (err) {
    stderr.write(`cairn: invalid server URL ${JSON.stringify(url)}: ${(err as Error).message}\n`);
    return 2;
  }
  const ctx: Context = {
    client,
    json,
    progress: !json && (stderr as NodeJS.WriteStream).isTTY === true && env.TERM !== 'dumb',
    stdout,
    stderr,
    env,
    cwd,
  };
  try {
    return await cmd.run(ctx, positionals, values);
  } catch (err) {
    if (err instanceof UsageError) {
      stderr.write(`cairn: ${err.message}\nusage: cairn ${cmd.synopsis}\n`);
      return 2;
    }
    const { code, message, json: doc } = describe(err);
    stderr.write(`cairn: ${message} (${code})\n`);
    if (json) stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    if (!(err instanceof ClientError || err instanceof CliError) && env.CAIRN_DEBUG) stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    return 1;
  }
}
