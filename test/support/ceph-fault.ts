// A throwaway Ceph cluster (scripts/s3-server.sh) whose RADOS Gateway a test
// can kill and start again: the mon and osd keep running, so the data survives
// and only the S3 endpoint goes away.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from './wait-for.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 's3-server.sh');
const run = promisify(execFile);

export interface FaultCluster {
  dir: string;
  endpoint: string;
  env: Record<string, string>;
  ports: { rgw: number; monV2: number; monV1: number };
}

function scriptEnv(ports: FaultCluster['ports']): NodeJS.ProcessEnv {
  return { ...process.env, RGW_PORT: String(ports.rgw), MON_V2: String(ports.monV2), MON_V1: String(ports.monV1) };
}

export async function startFaultCluster(dir: string, ports: FaultCluster['ports']): Promise<FaultCluster> {
  await run('bash', [SCRIPT, 'start', dir], { env: scriptEnv(ports), timeout: 240_000, maxBuffer: 1 << 20 });
  const text = await fs.readFile(path.join(dir, 'env'), 'utf8');
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm)) env[m[1]!] = m[2]!;
  return { dir, endpoint: env.CAIRN_S3_ENDPOINT!, env, ports };
}

export async function stopFaultCluster(cluster: { dir: string; ports: FaultCluster['ports'] }): Promise<void> {
  await run('bash', [SCRIPT, 'stop', cluster.dir], { env: scriptEnv(cluster.ports), timeout: 120_000 }).catch(() => undefined);
  await fs.rm(cluster.dir, { recursive: true, force: true });
  await fs.rm(`${cluster.dir}.lock`, { force: true });
}

async function rgwPid(dir: string): Promise<number | undefined> {
  const lines = (await fs.readFile(path.join(dir, 'pids'), 'utf8')).split('\n');
  const line = lines.find((l) => l.startsWith('rgw.'));
  return line ? Number(line.split(/\s+/)[1]) : undefined;
}

async function isOurs(pid: number, conf: string): Promise<boolean> {
  try {
    return (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').includes(conf);
  } catch {
    return false;
  }
}

/** SIGKILLs the cluster's radosgw (only that pid, checked against its command line). */
export async function killRgw(cluster: FaultCluster): Promise<void> {
  const conf = path.join(cluster.dir, 'ceph.conf');
  const pid = await rgwPid(cluster.dir);
  if (!pid || !(await isOurs(pid, conf))) throw new Error(`no running radosgw recorded in ${cluster.dir}/pids`);
  process.kill(pid, 'SIGKILL');
  await waitFor(`radosgw ${pid} gone`, async () => !(await isOurs(pid, conf)), 5_000, 25);
  // the port must be refused now
  await waitFor('the S3 port refused', () => fetch(cluster.endpoint, { signal: AbortSignal.timeout(500) }).then(() => false, () => true), 10_000, 50);
}

/** Starts radosgw again exactly as the script does, records its pid, waits for S3 to answer. */
export async function startRgw(cluster: FaultCluster, timeoutMs = 60_000): Promise<void> {
  const conf = path.join(cluster.dir, 'ceph.conf');
  const log = await fs.open(path.join(cluster.dir, 'log', 'rgw.a.out'), 'a');
  const child = spawn('radosgw', ['-c', conf, '-n', 'client.rgw.a', '-f'], { detached: true, stdio: ['ignore', log.fd, log.fd] });
  child.unref();
  await log.close();
  const pids = path.join(cluster.dir, 'pids');
  const lines = (await fs.readFile(pids, 'utf8')).split('\n').filter((l) => l && !l.startsWith('rgw.'));
  lines.push(`rgw.a ${child.pid}`);
  await fs.writeFile(pids, `${lines.join('\n')}\n`);
  await waitFor('radosgw answering again', async () => {
    const res = await fetch(cluster.endpoint, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return true;
  }, timeoutMs, 100);
}
