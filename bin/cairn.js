#!/usr/bin/env -S node --max-semi-space-size=2
// The `cairn` command. The sources are TypeScript, run through tsx's loader.
// --max-semi-space-size=2 (also in `npm start`): V8's young generation grows
// to 32 MiB by default, which the server's short-lived objects fill and keep
// resident; 2 MiB semi-spaces keep ~30 MiB off its RSS at no measured cost.
// It can only be given on the command line, not set from inside.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
