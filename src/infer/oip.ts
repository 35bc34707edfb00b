// The Open Inference Protocol v2, REST (kserve/open-inference-protocol:
// specification/protocol/inference_rest.md and open_inference_rest.yaml):
//   GET  /v2                                           server metadata
//   GET  /v2/health/live · /v2/health/ready            liveness, readiness
//   GET  /v2/models/{m}[/versions/{v}]                 model metadata
//   GET  /v2/models/{m}[/versions/{v}]/ready           model readiness
//   POST /v2/models/{m}[/versions/{v}]/infer           inference
// {v} is a version (`1.0.0`), a label (`production`, `latest`) or a
// version number. Inference also takes Triton's binary tensor extension:
// with an `Inference-Header-Content-Length` header, the body is that many
// bytes of JSON followed by the tensors' raw bytes (inputs with a
// `binary_data_size` parameter), and outputs come back the same way when
// asked (`binary_data_output`, or `binary_data` on an output).
// Errors are {"error": "…"}: 400 for a bad request, 404 for an unknown
// model or version, 503 while not ready.
import { errorReply, jsonReply, matchModel, withVersion, type InferReply, type InferRequest, type ModelSet } from './protocol.ts';
import { describeInputs, type ServedModel, type ServedVersion, type VersionSelector } from './served-model.ts';
import {
  elementTypeOfOip,
  flatJson,
  oipDatatype,
  parseJsonLenient,
  tensorBytes,
  tensorFromBytes,
  tensorFromFlat,
  TensorInputError,
  type Tensor,
  type TensorSpec,
} from './tensors.ts';

export const SERVER_NAME = 'cairn-infer';
const EXTENSIONS = ['binary_tensor_data'];
/** The `platform` of ONNX models, as Triton names it. */
const PLATFORM = 'onnxruntime_onnx';

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function metadataTensor(spec: TensorSpec): unknown {
  return { name: spec.name, datatype: oipDatatype(spec.type), shape: spec.shape.map((d) => (typeof d === 'number' ? d : -1)) };
}

function metadataBody(model: ServedModel, entry: ServedVersion): unknown {
  const versions = [...new Set([...model.servedLabels().values()].map((e) => e.version))];
  return {
    name: model.name,
    versions,
    platform: PLATFORM,
    inputs: entry.signature!.inputs.map(metadataTensor),
    outputs: entry.signature!.outputs.map(metadataTensor),
  };
}

function parameter(params: unknown, key: string): unknown {
  return isPlainObject(params) ? params[key] : undefined;
}

interface ParsedInfer {
  id?: string;
  feeds: Record<string, Tensor>;
  /** requested outputs in order, each with whether it goes back as binary */
  outputs: Array<{ name: string; binary: boolean }>;
}

function parseInfer(json: unknown, binary: Uint8Array | undefined, entry: ServedVersion): ParsedInfer {
  const { inputs, outputs } = entry.signature!;
  if (!isPlainObject(json)) throw new TensorInputError('the request body must be a JSON object (inference_request)');
  if (json.id !== undefined && typeof json.id !== 'string') throw new TensorInputError('"id" must be a string');
  if (json.parameters !== undefined && !isPlainObject(json.parameters)) throw new TensorInputError('"parameters" must be an object');
  if (!Array.isArray(json.inputs)) throw new TensorInputError(`"inputs" must be a list of tensors: the model takes ${describeInputs(inputs)}`);
  const feeds: Record<string, Tensor> = {};
  let at = 0;
  for (const [i, input] of json.inputs.entries()) {
    if (!isPlainObject(input)) throw new TensorInputError(`inputs[${i}] must be an object with name, shape, datatype and data`);
    const { name, shape, datatype } = input;
    if (typeof name !== 'string') throw new TensorInputError(`inputs[${i}].name must be a string`);
    const spec = inputs.find((s) => s.name === name);
    if (!spec) throw new TensorInputError(`unknown input '${name}': the model takes ${describeInputs(inputs)}`);
    if (feeds[name]) throw new TensorInputError(`input '${name}' is given twice`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new TensorInputError(`input '${name}': "shape" must be a list of non-negative integers`);
    }
    if (typeof datatype !== 'string') throw new TensorInputError(`input '${name}': "datatype" must be a string such as ${oipDatatype(spec.type)}`);
    const type = elementTypeOfOip(datatype);
    if (type !== spec.type) throw new TensorInputError(`input '${name}' is ${datatype}; the model takes ${oipDatatype(spec.type)}`);
    const size = parameter(input.parameters, 'binary_data_size');
    if (size !== undefined) {
      if (!Number.isSafeInteger(size) || (size as number) < 0) throw new TensorInputError(`input '${name}': binary_data_size must be a non-negative integer`);
      if (input.data !== undefined) throw new TensorInputError(`input '${name}' has both "data" and binary_data_size`);
      if (!binary || at + (size as number) > binary.byteLength) {
        throw new TensorInputError(`input '${name}': binary_data_size ${size} runs past the binary data after the JSON header (${binary?.byteLength ?? 0} bytes)`);
      }
      feeds[name] = tensorFromBytes(binary.subarray(at, at + (size as number)), type, shape as number[], name);
      at += size as number;
    } else {
      if (input.data === undefined) throw new TensorInputError(`input '${name}' has no "data"`);
      feeds[name] = tensorFromFlat(input.data, type, shape as number[], name);
    }
  }
  if (binary && at !== binary.byteLength) throw new TensorInputError(`${binary.byteLength - at} bytes of binary data after the JSON header belong to no input`);
  const allBinary = parameter(json.parameters, 'binary_data_output') === true;
  let requested: Array<{ name: string; binary: boolean }>;
  if (json.outputs === undefined) requested = outputs.map((s) => ({ name: s.name, binary: allBinary }));
  else {
    if (!Array.isArray(json.outputs)) throw new TensorInputError('"outputs" must be a list of {name}');
    requested = json.outputs.map((o, i) => {
      if (!isPlainObject(o) || typeof o.name !== 'string') throw new TensorInputError(`outputs[${i}] must be an object with a name`);
      const name = o.name;
      if (!outputs.some((s) => s.name === name)) throw new TensorInputError(`unknown output '${name}': the model has ${outputs.map((s) => s.name).join(', ')}`);
      return { name, binary: parameter(o.parameters, 'binary_data') === true || (allBinary && parameter(o.parameters, 'binary_data') !== false) };
    });
  }
  return { id: json.id as string | undefined, feeds, outputs: requested };
}

async function infer(model: ServedModel, selector: VersionSelector, req: InferRequest): Promise<InferReply> {
  const extra: Partial<InferReply> = { model: model.name, protocol: 'oip' };
  let json: unknown;
  let binary: Uint8Array | undefined;
  const headerLength = req.headers['inference-header-content-length'];
  try {
    if (headerLength !== undefined) {
      const n = Number(headerLength);
      if (!Number.isSafeInteger(n) || n < 0 || n > req.body.byteLength) {
        return errorReply(400, `Inference-Header-Content-Length ${headerLength} is not a length within the ${req.body.byteLength}-byte body`, extra);
      }
      json = parseJsonLenient(req.body.subarray(0, n).toString('utf8'));
      binary = req.body.subarray(n);
    } else {
      json = parseJsonLenient(req.body.toString('utf8'));
    }
  } catch (err) {
    return errorReply(400, `the request body is not JSON: ${(err as Error).message}`, extra);
  }
  return withVersion(model, selector, extra, async (entry) => {
    const parsed = parseInfer(json, binary, entry);
    const result = await model.infer(entry, parsed.feeds);
    const head: string[] = [];
    const blobs: Uint8Array[] = [];
    for (const { name, binary: asBinary } of parsed.outputs) {
      const t = result[name]!;
      const common = `"name":${JSON.stringify(name)},"datatype":"${oipDatatype(t.type)}","shape":[${t.dims.join(',')}]`;
      if (asBinary) {
        const bytes = tensorBytes(t);
        blobs.push(bytes);
        head.push(`{${common},"parameters":{"binary_data_size":${bytes.byteLength}}}`);
      } else {
        head.push(`{${common},"data":${flatJson(t, { nonFinite: 'string' })}}`);
      }
    }
    const text = `{"model_name":${JSON.stringify(model.name)},"model_version":${JSON.stringify(entry.version)}${parsed.id !== undefined ? `,"id":${JSON.stringify(parsed.id)}` : ''},"outputs":[${head.join(',')}]}`;
    if (blobs.length === 0) return { status: 200, body: text, headers: { 'content-type': 'application/json' }, ...extra };
    const header = Buffer.from(text, 'utf8');
    return {
      status: 200,
      body: [header, ...blobs],
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) },
      ...extra,
    };
  });
}

/** Handles /v2 and /v2/… ; undefined for any other path. */
export async function handleOip(models: ModelSet, req: InferRequest, version: string): Promise<InferReply | undefined> {
  if (!/^\/v2(\/|$)/.test(req.path)) return undefined;
  const path = req.path.replace(/\/+$/, '') || '/';
  if (req.method === 'GET' && path === '/v2') return jsonReply(200, { name: SERVER_NAME, version, extensions: EXTENSIONS });
  if (req.method === 'GET' && path === '/v2/health/live') return jsonReply(200, { live: true });
  if (req.method === 'GET' && path === '/v2/health/ready') {
    const ready = [...models.values()].every((m) => m.ready);
    return jsonReply(ready ? 200 : 503, { ready });
  }
  const m = /^\/v2\/models\/(.+)$/.exec(path);
  if (!m) return errorReply(404, `no such endpoint: ${req.method} ${req.path}`);
  const found = matchModel(models, m[1]!);
  if ('unknown' in found) return errorReply(404, `unknown model: ${found.unknown} (this server serves ${[...models.keys()].join(', ')})`);
  const { model, after } = found;
  const parts = /^(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/.exec(after);
  if (!parts) return errorReply(404, `no such endpoint: ${req.method} ${req.path}`);
  const [, versionText, action] = parts;
  const selector: VersionSelector = versionText === undefined ? { kind: 'default' } : { kind: 'any', text: versionText };
  const extra: Partial<InferReply> = { model: model.name, protocol: 'oip' };

  if (action === '/infer') {
    if (req.method !== 'POST') return errorReply(405, `${req.method} ${req.path}: inference is a POST`, extra);
    return infer(model, selector, req);
  }
  if (req.method !== 'GET') return errorReply(405, `${req.method} ${req.path}: use GET`, extra);
  if (action === '/ready') {
    const reply = await withVersion(model, selector, extra, () => jsonReply(200, { name: model.name, ready: true }, extra));
    // a version still loading, or failed: not ready (503), as a probe wants it
    return reply.status === 404 || reply.status === 503 ? jsonReply(503, { name: model.name, ready: false }, extra) : reply;
  }
  return withVersion(model, selector, extra, (entry) => jsonReply(200, metadataBody(model, entry), extra));
}
