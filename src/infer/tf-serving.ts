// TensorFlow Serving's REST API (tensorflow_serving/g3doc/api_rest.md) on
// the served models:
//   GET  /v1/models/{name}[/versions/{n}|/labels/{label}]             status
//   GET  /v1/models/{name}[/versions/{n}|/labels/{label}]/metadata    signature
//   POST /v1/models/{name}[/versions/{n}|/labels/{label}]:predict     row or columnar
// {n} is the registry's version number; labels are `latest` and the aliases.
// Errors are {"error": "…"} with the status TF Serving gives the error's
// code (model_servers/http_server.cc, ToHTTPStatusCode): INVALID_ARGUMENT 400,
// NOT_FOUND 404, UNIMPLEMENTED 501, UNAVAILABLE 503.
import { errorReply, jsonReply, matchModel, withVersion, type InferReply, type InferRequest, type ModelSet } from './protocol.ts';
import { describeInputs, type ServedModel, type ServedVersion, type VersionSelector } from './served-model.ts';
import { nestedJson, parseJsonLenient, sliceRows, stack, tensorFromNested, TensorInputError, tfDtype, type Tensor, type TensorSpec } from './tensors.ts';

/** TF Serving's GetModelStatusResponse for these versions (proto3 JSON: int64 as a string). */
function statusBody(entries: ServedVersion[]): unknown {
  return {
    model_version_status: entries.map((e) => ({
      version: String(e.number),
      state: e.state,
      status: { error_code: e.errorCode, error_message: e.error },
    })),
  };
}

function tensorInfo(spec: TensorSpec): unknown {
  return {
    dtype: tfDtype(spec.type),
    tensor_shape: {
      // a symbolic dim is -1, with its ONNX name (dim_param) as the dim's name
      dim: spec.shape.map((d) => (typeof d === 'number' ? { size: String(d), name: '' } : { size: '-1', name: d })),
      unknown_rank: false,
    },
    name: spec.name,
  };
}

/** GetModelMetadataResponse: the version's ONNX inputs and outputs as the `serving_default` signature. */
function metadataBody(model: ServedModel, entry: ServedVersion): unknown {
  const { inputs, outputs } = entry.signature!;
  return {
    model_spec: { name: model.name, signature_name: '', version: String(entry.number) },
    metadata: {
      signature_def: {
        signature_def: {
          serving_default: {
            inputs: Object.fromEntries(inputs.map((s) => [s.name, tensorInfo(s)])),
            outputs: Object.fromEntries(outputs.map((s) => [s.name, tensorInfo(s)])),
            method_name: 'tensorflow/serving/predict',
          },
        },
      },
    },
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isB64 = (v: unknown): boolean => isPlainObject(v) && Object.keys(v).length === 1 && typeof v.b64 === 'string';

function sameTensor(a: Tensor, b: Tensor): boolean {
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i] && !(Number.isNaN(a.data[i]) && Number.isNaN(b.data[i]))) return false;
  return true;
}

/**
 * The row form: instance i holds row i of every input (TF Serving), or — for
 * an input given at the model's full rank, which cannot be split into rows,
 * like a recurrent state or a scalar — the whole tensor, equal in every
 * instance.
 */
function feedsFromInstances(instances: unknown, inputs: TensorSpec[]): Record<string, Tensor> {
  if (!Array.isArray(instances) || instances.length === 0) throw new TensorInputError("'instances' must be a non-empty list");
  const named = instances.every((x) => isPlainObject(x) && !isB64(x));
  if (!named && inputs.length !== 1) {
    throw new TensorInputError(`the model takes ${inputs.length} inputs (${describeInputs(inputs)}): each instance must be an object naming them`);
  }
  const feeds: Record<string, Tensor> = {};
  for (const spec of inputs) {
    const values = instances.map((x, i) => {
      if (!named) return x;
      const obj = x as Record<string, unknown>;
      if (!Object.hasOwn(obj, spec.name)) throw new TensorInputError(`instance ${i} has no input '${spec.name}': the model takes ${describeInputs(inputs)}`);
      return obj[spec.name];
    });
    const rank = spec.shape.length;
    const parts = values.map((v) => tensorFromNested(v, spec.type, spec.name));
    const ranks = new Set(parts.map((t) => t.dims.length));
    if (ranks.size !== 1) throw new TensorInputError(`input '${spec.name}': instances give it with different ranks (${[...ranks].join(', ')})`);
    const r = parts[0]!.dims.length;
    if (r === rank - 1) {
      const first = parts[0]!.dims.join(',');
      const odd = parts.findIndex((t) => t.dims.join(',') !== first);
      if (odd >= 0) throw new TensorInputError(`input '${spec.name}': instance ${odd} has shape [${parts[odd]!.dims.join(', ')}], instance 0 [${parts[0]!.dims.join(', ')}]; rows must have equal shapes`);
      feeds[spec.name] = stack(parts);
    } else if (r === rank) {
      const odd = parts.findIndex((t) => !sameTensor(t, parts[0]!));
      if (odd >= 0) throw new TensorInputError(`input '${spec.name}' is given whole (rank ${rank}) in each instance, so every instance must hold the same value; instance ${odd} differs`);
      feeds[spec.name] = parts[0]!;
    } else {
      throw new TensorInputError(
        `input '${spec.name}': an instance holds shape [${parts[0]!.dims.join(', ')}]; the model takes rank ${rank} [${spec.shape.map((d) => (typeof d === 'number' ? d : -1)).join(', ')}]: give one row (rank ${rank - 1}) per instance, or the whole tensor`,
      );
    }
  }
  if (named) {
    for (const [i, x] of instances.entries()) {
      for (const key of Object.keys(x as object)) {
        if (!inputs.some((s) => s.name === key)) throw new TensorInputError(`instance ${i} has unknown input '${key}': the model takes ${describeInputs(inputs)}`);
      }
    }
  }
  return feeds;
}

/** The columnar form: one value per input, keyed by name (or bare, for a one-input model). */
function feedsFromInputs(value: unknown, inputs: TensorSpec[]): Record<string, Tensor> {
  const only = inputs.length === 1 ? inputs[0]! : undefined;
  // an object that is not {"b64"} names inputs; anything else is the one input's value
  if (only && !(isPlainObject(value) && !isB64(value))) {
    return { [only.name]: tensorFromNested(value, only.type, only.name) };
  }
  if (!isPlainObject(value) || isB64(value)) throw new TensorInputError(`'inputs' must be an object naming the model's inputs: ${describeInputs(inputs)}`);
  const feeds: Record<string, Tensor> = {};
  for (const [name, v] of Object.entries(value)) {
    const spec = inputs.find((s) => s.name === name);
    if (!spec) throw new TensorInputError(`unknown input '${name}' in 'inputs': the model takes ${describeInputs(inputs)}`);
    feeds[name] = tensorFromNested(v, spec.type, name);
  }
  return feeds;
}

/** Binary strings come back as {"b64": …} when the output's name ends in _bytes (api_rest.md). */
function outputJson(name: string, t: Tensor): string {
  return nestedJson(t, { nonFinite: 'bare', b64: name.endsWith('_bytes') });
}

function predictionsJson(outputs: Record<string, Tensor>, order: string[], n: number): string {
  // split along dim 0 when it has a row per instance; whole in every instance otherwise
  const rowOf = (t: Tensor, i: number): Tensor => {
    if (t.dims.length > 0 && t.dims[0] === n) {
      const row = sliceRows(t, i, i + 1);
      return { ...row, dims: row.dims.slice(1) };
    }
    return t;
  };
  if (order.length === 1) {
    const t = outputs[order[0]!]!;
    if (t.dims.length > 0 && t.dims[0] === n) return outputJson(order[0]!, t);
    return `[${Array.from({ length: n }, () => outputJson(order[0]!, t)).join(',')}]`;
  }
  const rows: string[] = [];
  for (let i = 0; i < n; i++) rows.push(`{${order.map((name) => `${JSON.stringify(name)}:${outputJson(name, rowOf(outputs[name]!, i))}`).join(',')}}`);
  return `[${rows.join(',')}]`;
}

function outputsJson(outputs: Record<string, Tensor>, order: string[]): string {
  if (order.length === 1) return outputJson(order[0]!, outputs[order[0]!]!);
  return `{${order.map((name) => `${JSON.stringify(name)}:${outputJson(name, outputs[name]!)}`).join(',')}}`;
}

async function predict(model: ServedModel, selector: VersionSelector, req: InferRequest): Promise<InferReply> {
  const extra: Partial<InferReply> = { model: model.name, protocol: 'tfserving' };
  let body: unknown;
  try {
    body = parseJsonLenient(req.body.toString('utf8'));
  } catch (err) {
    return errorReply(400, `JSON Parse error: ${(err as Error).message}`, extra);
  }
  if (!isPlainObject(body)) return errorReply(400, 'the request body must be a JSON object with "instances" or "inputs"', extra);
  const signature = body.signature_name;
  if (signature !== undefined && typeof signature !== 'string') return errorReply(400, "'signature_name' key must be a string value.", extra);
  if (signature && signature !== 'serving_default') return errorReply(400, `Serving signature name: "${signature}" not found in signature def`, extra);
  const hasInstances = Object.hasOwn(body, 'instances');
  const hasInputs = Object.hasOwn(body, 'inputs');
  if (hasInstances === hasInputs) {
    return errorReply(400, hasInstances ? "Not both of 'instances' and 'inputs' may be given: use one" : "Missing 'inputs' or 'instances' key", extra);
  }
  return withVersion(model, selector, extra, async (entry) => {
    const { inputs, outputs } = entry.signature!;
    const feeds = hasInstances ? feedsFromInstances(body.instances, inputs) : feedsFromInputs(body.inputs, inputs);
    const n = hasInstances ? (body.instances as unknown[]).length : 0;
    const result = await model.infer(entry, feeds);
    const order = outputs.map((s) => s.name);
    const text = hasInstances ? `{"predictions":${predictionsJson(result, order, n)}}` : `{"outputs":${outputsJson(result, order)}}`;
    return { status: 200, body: text, headers: { 'content-type': 'application/json' }, ...extra };
  });
}

/** Handles /v1/models/… ; undefined for any other path. */
export async function handleTfServing(models: ModelSet, req: InferRequest): Promise<InferReply | undefined> {
  const m = /^\/v1\/models(?:\/(.*))?$/i.exec(req.path);
  if (!m) return undefined;
  const malformed = () => errorReply(400, `Malformed request: ${req.method} ${req.path}`);
  if (!m[1]) return req.method === 'GET' ? errorReply(400, 'Missing model name in request.') : malformed();
  const found = matchModel(models, m[1]);
  if ('unknown' in found) {
    if (req.method === 'POST' && /:(predict|classify|regress)$/.test(req.path)) return errorReply(404, `Servable not found for request: Latest(${found.unknown})`);
    return req.method === 'GET' ? errorReply(404, `Could not find any versions of model ${found.unknown}`) : malformed();
  }
  const { model, after } = found;
  const parts = /^(?:\/versions\/([^/:]+)|\/labels\/([^/:]+))?(\/metadata)?(?::([A-Za-z]+))?$/.exec(after);
  if (!parts) return malformed();
  const [, versionText, label, metadata, verb] = parts;
  if (versionText !== undefined && !/^\d{1,18}$/.test(versionText)) return errorReply(400, `Failed to convert version: ${versionText} to numeric.`);
  const selector: VersionSelector =
    versionText !== undefined ? { kind: 'number', number: Number(versionText) } : label !== undefined ? { kind: 'label', label } : { kind: 'default' };
  const extra: Partial<InferReply> = { model: model.name, protocol: 'tfserving' };

  if (verb !== undefined) {
    if (req.method !== 'POST' || metadata) return malformed();
    if (verb === 'predict') return predict(model, selector, req);
    if (verb === 'classify' || verb === 'regress') return errorReply(501, `${verb} takes tf.Example inputs, which ONNX models do not have: use :predict`, extra);
    return malformed();
  }
  if (req.method !== 'GET') return malformed();

  if (metadata) return withVersion(model, selector, extra, (entry) => jsonReply(200, metadataBody(model, entry), extra));
  // status: every version known (TF Serving lists what its monitor knows, newest first)
  const all = model.statuses();
  if (selector.kind === 'number') {
    const entry = all.find((e) => e.number === selector.number);
    if (!entry) return errorReply(404, `Could not find version ${selector.number} of model ${model.name}`, extra);
    return jsonReply(200, statusBody([entry]), extra);
  }
  if (selector.kind === 'label') {
    const served = model.servedLabels().get(selector.label);
    if (served) return jsonReply(200, statusBody([served]), extra);
    const wanted = model.wantedLabels().get(selector.label);
    if (wanted === undefined) return errorReply(400, `Unrecognized servable version label: ${selector.label}`, extra);
    const entry = all.find((e) => e.version === wanted);
    if (!entry) return errorReply(404, `Could not find version ${wanted} of model ${model.name}`, extra);
    return jsonReply(200, statusBody([entry]), extra);
  }
  if (all.length === 0) return errorReply(404, `Could not find any versions of model ${model.name}`, extra);
  return jsonReply(200, statusBody(all), extra);
}

