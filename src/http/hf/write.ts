// The write side of the Hugging Face Hub API under /hf: create_repo,
// preupload, commits (NDJSON), branches and tags — what upload_file,
// upload_folder, create_commit, delete_file, create_branch, create_tag and
// transformers' push_to_hub send (huggingface_hub hf_api.py and
// _commit_api.py; @huggingface/hub lib/commit.ts). A commit is a new
// version: registry/hf-commits.ts. File bytes come through git LFS: ./lfs.ts.
import type { Request } from 'express';
import { CairnError } from '../../errors.ts';
import { MAIN } from '../../identifiers.ts';
import { pathPastDepth } from '../../json-limits.ts';
import { actorOf } from '../actor.ts';
import { callerOf, requireScope } from '../auth.ts';
import { jsonBodyParser, MAX_BODY_DEPTH } from '../json-body.ts';
import { pathParam, REF_ERRORS } from '../openapi.ts';
import { route } from '../route.ts';
import { HUB_BRANCH, HUB_JSON, HUB_REVISION, hubBase, WRITE } from './shared.ts';

/** A commit line holds at most one inline file (preupload sends files up to 1 MiB inline: 1.4 MB in base64). */
const MAX_COMMIT_LINE = 8 * 1024 * 1024;

const jsonBody = jsonBodyParser('10mb');

/** A request body of JSON lines (NDJSON), parsed one line at a time: the body is never held whole. */
export async function* jsonLines(body: AsyncIterable<Uint8Array>, maxLine = MAX_COMMIT_LINE): AsyncGenerator<unknown> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  const parse = (line: Buffer): unknown => {
    if (line.length > maxLine) throw new CairnError('PAYLOAD_TOO_LARGE', `a commit line may hold at most ${maxLine} bytes: send larger files through git LFS (preupload says which)`, { max_bytes: maxLine });
    const text = line.toString('utf8').trim();
    if (text === '') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new CairnError('INVALID_ARGUMENT', `a commit line is not JSON: ${text.slice(0, 80)}`);
    }
    if (pathPastDepth(value, MAX_BODY_DEPTH) !== undefined) throw new CairnError('INVALID_ARGUMENT', `a commit line nests more than ${MAX_BODY_DEPTH} levels`);
    return value;
  };
  for await (const piece of body) {
    let rest = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    for (let nl = rest.indexOf(10); nl >= 0; nl = rest.indexOf(10)) {
      const value = parse(held.length === 0 ? rest.subarray(0, nl) : Buffer.concat([...held, rest.subarray(0, nl)]));
      held = [];
      heldBytes = 0;
      rest = rest.subarray(nl + 1);
      if (value !== undefined) yield value;
    }
    heldBytes += rest.length;
    if (heldBytes > maxLine) parse(Buffer.concat([...held, rest])); // throws: too long
    if (rest.length > 0) held.push(rest);
  }
  const last = heldBytes > 0 ? parse(Buffer.concat(held)) : undefined;
  if (last !== undefined) yield last;
}

function refuseCreatePr(req: Request): void {
  if (req.query.create_pr === '1' || req.query.create_pr === 'true') throw new CairnError('INVALID_ARGUMENT', 'Cairn has no pull requests: commit to a branch (an alias) instead');
}

/** Creating and deleting a branch or a tag: both are aliases, a tag one that never moves (README "With Hugging Face clients"). */
function refRoutes(kind: 'branch' | 'tag') {
  const what = kind === 'branch' ? 'branch' : 'tag';
  return [
    route({
      method: 'post',
      path: `/hf/api/models/:name/${kind}/:revision`,
      access: WRITE,
      doc: {
        id: kind === 'branch' ? 'hubCreateBranch' : 'hubCreateTag',
        tag: 'hugging-face',
        summary:
          kind === 'branch'
            ? 'A new branch (create_branch): an alias on the version at `startingPoint` (default `main`)'
            : 'A new tag on a revision (create_tag): an alias `tag` on its version that nothing moves (no commit, alias set or publish; only delete_tag removes it)',
        params: [kind === 'branch' ? pathParam('revision', 'the new branch: an alias name') : HUB_REVISION],
        body: {
          required: kind === 'tag',
          content: { 'application/json': { schema: kind === 'branch' ? { type: 'object', properties: { startingPoint: { type: 'string' } } } : { type: 'object', properties: { tag: { type: 'string' }, message: { type: 'string' } }, required: ['tag'] } } },
        },
        responses: { 200: HUB_JSON('`{name, version}`', 'object') },
        errors: [...REF_ERRORS, 'INVALID_ALIAS', 'ALIAS_EXISTS', 'COMMIT_PENDING'],
      },
      before: () => [jsonBody],
      handle: ({ services }) => async (req, res) => {
        const body = (req.body ?? {}) as { startingPoint?: unknown; tag?: unknown };
        const [ref, revision] = kind === 'branch' ? [req.params.revision, typeof body.startingPoint === 'string' ? body.startingPoint : MAIN] : [body.tag, req.params.revision];
        const made = await services.hubRepos.createRef(req.params.name, kind, ref, revision, actorOf(req), callerOf(req));
        res.json({ name: made.alias, version: made.version });
      },
    }),
    route({
      method: 'delete',
      path: `/hf/api/models/:name/${kind}/:revision`,
      access: WRITE,
      doc: {
        id: kind === 'branch' ? 'hubDeleteBranch' : 'hubDeleteTag',
        tag: 'hugging-face',
        summary: `Deletes a ${what} (delete_${what}): removes the alias`,
        params: [pathParam('revision', `the ${what}`)],
        responses: { 200: HUB_JSON('`{}`', 'object') },
        errors: ['INVALID_NAME', 'INVALID_ALIAS', 'MODEL_NOT_FOUND', 'ALIAS_NOT_FOUND'],
      },
      handle: ({ services }) => (req, res) => {
        services.hubRepos.deleteRef(req.params.name, req.params.revision, actorOf(req));
        res.json({});
      },
    }),
  ];
}

/**
 * The model card metadata block of a README.md (`---` lines around YAML at
 * its top), if it has one: an unclosed block is the error create_commit
 * should stop at before uploading anything.
 */
function unclosedMetadata(content: string): string | undefined {
  const lines = content.split(/\r?\n/);
  if (lines[0]?.trim() !== '---') return undefined;
  return lines.slice(1).some((l) => l.trim() === '---') ? undefined : 'the metadata block at the top of README.md (after its first `---` line) has no closing `---` line';
}

export const hubWriteRoutes = [
  route({
    method: 'post',
    path: '/hf/api/validate-yaml',
    access: { scope: 'write' },
    doc: {
      id: 'hubValidateYaml',
      tag: 'hugging-face',
      summary: "A README.md's metadata block, checked before a commit that adds it (huggingface_hub create_commit)",
      description: 'Cairn keeps README.md like any other file: it checks only that a metadata block at its top is closed (400 with `errors` otherwise), not the YAML within.',
      body: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { content: { type: 'string' }, repoType: { type: 'string' } }, required: ['content'] } } } },
      responses: { 200: HUB_JSON('`{warnings: [], errors: []}`', 'object') },
      errors: ['INVALID_ARGUMENT'],
    },
    before: () => [jsonBody],
    handle: () => (req, res) => {
      const content = (req.body as { content?: unknown } | undefined)?.content;
      if (typeof content !== 'string') throw new CairnError('INVALID_ARGUMENT', 'content must be the text of a README.md', { errors: [{ message: 'content must be a string' }] });
      const problem = unclosedMetadata(content);
      if (problem) throw new CairnError('INVALID_ARGUMENT', problem, { errors: [{ message: problem }] });
      res.json({ warnings: [], errors: [] });
    },
  }),
  route({
    method: 'post',
    path: '/hf/api/repos/create',
    access: { scope: 'write' },
    doc: {
      id: 'hubCreateRepo',
      tag: 'hugging-face',
      summary: 'A new, empty model (create_repo): `{name, organization}` is `<organization>/<name>`',
      description: 'Needs the write scope on that name; 409 MODEL_EXISTS when it exists (clients pass `exist_ok`). The model has no version until its first commit.',
      body: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { name: { type: 'string' }, organization: { type: 'string' }, type: { type: 'string', enum: ['model'] } }, required: ['name'] } } } },
      responses: { 200: HUB_JSON('`{url, name}`', 'object') },
      errors: ['INVALID_NAME', 'INVALID_ARGUMENT', 'MODEL_EXISTS'],
    },
    before: () => [jsonBody],
    handle: ({ services }) => (req, res) => {
      const { name, organization, type } = (req.body ?? {}) as { name?: unknown; organization?: unknown; type?: unknown };
      if (type !== undefined && type !== null && type !== 'model') throw new CairnError('INVALID_ARGUMENT', `Cairn holds models only, not ${String(type)}s`);
      if (typeof name !== 'string' || (organization !== undefined && organization !== null && typeof organization !== 'string')) throw new CairnError('INVALID_NAME', 'name (and organization) must be strings');
      const full = organization ? `${organization}/${name}` : name;
      requireScope(req, 'write', full); // the name is in the body: the route table cannot check it
      const url = `${hubBase(req)}/${full}`;
      // huggingface_hub's create_repo(exist_ok=True) reads the url from the 409 too (hf_api.py)
      services.hubCommits.createRepo(full, { url });
      res.json({ url, name: full, id: full });
    },
  }),
  route({
    method: 'post',
    path: '/hf/api/models/:name/preupload/:revision',
    access: WRITE,
    doc: {
      id: 'hubPreupload',
      tag: 'hugging-face',
      summary: 'How to send each file of a commit (preupload): files up to 1 MiB inline, larger ones through git LFS',
      description: "`oid` is what the branch holds at the path now (sha256 for LFS, the git blob id for inline files): huggingface_hub leaves out a file that did not change.",
      params: [HUB_BRANCH],
      body: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { files: { type: 'array', items: { type: 'object' } } }, required: ['files'] } } } },
      responses: { 200: HUB_JSON('`{files: [{path, uploadMode: regular|lfs, shouldIgnore, oid}]}`', 'object') },
      errors: ['INVALID_NAME', 'INVALID_PATH', 'MODEL_NOT_FOUND', 'ALIAS_NOT_FOUND', ...['STORAGE_UNAVAILABLE', 'CONTENT_CORRUPT'] as const],
    },
    before: () => [jsonBody],
    handle: ({ services }) => async (req, res) => {
      refuseCreatePr(req);
      const files = await services.hubCommits.uploadModes(req.params.name, req.params.revision, (req.body as { files?: unknown } | undefined)?.files);
      res.json({ files });
    },
  }),
  route({
    method: 'post',
    path: '/hf/api/models/:name/commit/:revision',
    access: WRITE,
    doc: {
      id: 'hubCommit',
      tag: 'hugging-face',
      summary: 'A commit (create_commit, upload_file, upload_folder, delete_file): a new version',
      description:
        'NDJSON: a `header` line (`summary`, `description`, `parentCommit`), then `file` (inline base64), `lfsFile` (sha256 of content uploaded through git LFS), `deletedFile` and `deletedFolder` lines. The version holds the files of the version at the branch, changed by these; its string is its number (`<number>.<k>` when taken) unless the description has a line `Cairn-Version: <version>`; its parent is that version (`derived-from`); a commit to a branch other than `main` moves that alias. `parentCommit` that is no longer the head of the branch: 412.',
      params: [HUB_BRANCH],
      body: { required: true, content: { 'application/x-ndjson': { schema: { type: 'string' } } } },
      responses: { 200: HUB_JSON('`{commitOid, commitUrl, pullRequestUrl: null, cairn: {version, number}}`', 'object') },
      errors: [
        'INVALID_NAME',
        'INVALID_ARGUMENT',
        'INVALID_PATH',
        'INVALID_DIGEST',
        'INVALID_VERSION',
        'INVALID_ALIAS',
        'DUPLICATE_PATH',
        'UNKNOWN_BLOB',
        'DIGEST_MISMATCH',
        'MODEL_NOT_FOUND',
        'ALIAS_NOT_FOUND',
        'FILE_NOT_FOUND',
        'VERSION_EXISTS',
        'PRECONDITION_FAILED',
        'PAYLOAD_TOO_LARGE',
        'UNSUPPORTED_MEDIA_TYPE',
        'INVALID_MODEL_FILE',
        'UNSAFE_MODEL',
        'COMMIT_PENDING',
        'STORAGE_UNAVAILABLE',
      ],
    },
    handle: ({ services }) => async (req, res) => {
      refuseCreatePr(req);
      if (!req.is('application/x-ndjson')) throw new CairnError('UNSUPPORTED_MEDIA_TYPE', 'a commit is application/x-ndjson: a header line, then one line per operation');
      const { version, commit } = await services.hubCommits.commit({ name: req.params.name, branch: req.params.revision, items: jsonLines(req), actor: actorOf(req), caller: callerOf(req) });
      res.json({ success: true, commitOid: commit, commitUrl: `${hubBase(req)}/${version.name}/commit/${commit}`, pullRequestUrl: null, hookOutput: '', cairn: { version: version.version, number: version.number } });
    },
  }),
  ...refRoutes('branch'),
  ...refRoutes('tag'),
];
