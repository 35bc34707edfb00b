// The `cairn` command line: `serve` runs the server; the other commands talk
// to one over HTTP (CAIRN_URL, default http://127.0.0.1:7070).
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { startServer } from './main.ts';

const USAGE = `usage: cairn <command> [options]

  serve                              run the server (configured by CAIRN_* variables)

Environment: CAIRN_URL (default http://127.0.0.1:7070), CAIRN_DATA_DIR, CAIRN_HOST, CAIRN_PORT, CAIRN_S3_*.
`;

async function serve(): Promise<number> {
  const log = createLogger();
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`cairn: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const running = await startServer(config, log);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('shutting down', { signal });
      running.close().then(resolve, resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    case 'serve':
      return serve();
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`cairn: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}
