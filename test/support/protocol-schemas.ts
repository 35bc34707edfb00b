// The wire formats `cairn infer` speaks, as JSON Schemas, and a validator
// for the subset of JSON Schema they use (type, properties, required,
// additionalProperties, items, anyOf, enum, $ref).
//
// OIP: the component schemas of kserve/open-inference-protocol
// specification/protocol/open_inference_rest.yaml (OpenAPI 3.0), written out
// as JSON Schema; the ready responses, which the YAML leaves without a
// schema, from inference_rest.md ("Model Ready Response JSON Object").
//
// TF Serving: tensorflow_serving/g3doc/api_rest.md gives the JSON by example
// and by proto: status is GetModelStatusResponse (get_model_status.proto:
// model_version_status [{version (int64, so a string in proto3 JSON), state,
// status {error_code, error_message}}]), metadata GetModelMetadataResponse
// (model_spec {name, signature_name, version} and the SignatureDefMap under
// metadata.signature_def), predict {"predictions": …} (row) or {"outputs": …}
// (columnar), errors {"error": "<message>"}. These schemas allow nothing else.

export type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
  $ref?: string;
};

// ---- Open Inference Protocol (open_inference_rest.yaml, components.schemas) ----

const parameters: Schema = { type: 'object' };
const tensorData: Schema = { type: 'array', items: { anyOf: [{ $ref: 'tensor_data' }, { type: 'number' }, { type: 'string' }, { type: 'boolean' }] } };
const metadataTensor: Schema = {
  type: 'object',
  properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } } },
  required: ['name', 'datatype', 'shape'],
};

export const OIP: Record<string, Schema> = {
  parameters,
  tensor_data: tensorData,
  metadata_tensor: metadataTensor,
  metadata_server_response: {
    type: 'object',
    properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } },
    required: ['name', 'version', 'extensions'],
  },
  metadata_server_error_response: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] },
  metadata_model_response: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      versions: { type: 'array', items: { type: 'string' } },
      platform: { type: 'string' },
      inputs: { type: 'array', items: { $ref: 'metadata_tensor' } },
      outputs: { type: 'array', items: { $ref: 'metadata_tensor' } },
    },
    required: ['name', 'platform'],
  },
  metadata_model_error_response: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] },
  response_output: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      shape: { type: 'array', items: { type: 'integer' } },
      datatype: { type: 'string' },
      parameters: { $ref: 'parameters' },
      data: { $ref: 'tensor_data' },
    },
    required: ['name', 'shape', 'datatype', 'data'],
  },
  inference_response: {
    type: 'object',
    properties: {
      model_name: { type: 'string' },
      model_version: { type: 'string' },
      id: { type: 'string' },
      parameters: { $ref: 'parameters' },
      outputs: { type: 'array', items: { $ref: 'response_output' } },
    },
    required: ['model_name', 'outputs'],
  },
  inference_error_response: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] },
  // inference_rest.md: $ready_model_response = { "name": $string, "ready": $bool }
  ready_model_response: { type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } }, required: ['name', 'ready'] },
};

// ---- TF Serving (api_rest.md and the protos it names) --------------------------

const tensorInfo: Schema = {
  type: 'object',
  properties: {
    dtype: { type: 'string' },
    tensor_shape: {
      type: 'object',
      properties: {
        dim: { type: 'array', items: { type: 'object', properties: { size: { type: 'string' }, name: { type: 'string' } }, required: ['size', 'name'], additionalProperties: false } },
        unknown_rank: { type: 'boolean' },
      },
      required: ['dim', 'unknown_rank'],
      additionalProperties: false,
    },
    name: { type: 'string' },
  },
  required: ['dtype', 'tensor_shape', 'name'],
  additionalProperties: false,
};

export const TF: Record<string, Schema> = {
  error: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'], additionalProperties: false },
  status: {
    type: 'object',
    properties: {
      model_version_status: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            version: { type: 'string' },
            state: { enum: ['UNKNOWN', 'START', 'LOADING', 'AVAILABLE', 'UNLOADING', 'END'] },
            status: {
              type: 'object',
              properties: { error_code: { type: 'string' }, error_message: { type: 'string' } },
              required: ['error_code', 'error_message'],
              additionalProperties: false,
            },
          },
          required: ['version', 'state', 'status'],
          additionalProperties: false,
        },
      },
    },
    required: ['model_version_status'],
    additionalProperties: false,
  },
  tensor_info: tensorInfo,
  metadata: {
    type: 'object',
    properties: {
      model_spec: {
        type: 'object',
        properties: { name: { type: 'string' }, signature_name: { type: 'string' }, version: { type: 'string' } },
        required: ['name', 'signature_name', 'version'],
        additionalProperties: false,
      },
      metadata: {
        type: 'object',
        properties: {
          signature_def: {
            type: 'object',
            properties: {
              signature_def: {
                type: 'object',
                additionalProperties: {
                  type: 'object',
                  properties: {
                    inputs: { type: 'object', additionalProperties: { $ref: 'tensor_info' } },
                    outputs: { type: 'object', additionalProperties: { $ref: 'tensor_info' } },
                    method_name: { type: 'string' },
                  },
                  required: ['inputs', 'outputs', 'method_name'],
                  additionalProperties: false,
                },
              },
            },
            required: ['signature_def'],
            additionalProperties: false,
          },
        },
        required: ['signature_def'],
        additionalProperties: false,
      },
    },
    required: ['model_spec', 'metadata'],
    additionalProperties: false,
  },
  // "predictions": <value>|<(nested)list>|<list-of-objects>
  predict_row: { type: 'object', properties: { predictions: { type: 'array' } }, required: ['predictions'], additionalProperties: false },
  // "outputs": <value>|<(nested)list>|<object>
  predict_columnar: { type: 'object', properties: { outputs: { type: ['array', 'object', 'number', 'string', 'boolean'] } }, required: ['outputs'], additionalProperties: false },
};

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Problems with `value` against `schema` (empty: valid). `defs` resolves $ref by name. */
export function validate(value: unknown, schema: Schema, defs: Record<string, Schema>, at = '$'): string[] {
  if (schema.$ref) {
    const target = defs[schema.$ref];
    if (!target) return [`${at}: unknown $ref ${schema.$ref}`];
    return validate(value, target, defs, at);
  }
  const problems: string[] = [];
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [`${at}: ${t}, expected ${types.join(' or ')}`];
  }
  if (schema.enum && !schema.enum.some((e) => e === value)) problems.push(`${at}: ${JSON.stringify(value)} not one of ${JSON.stringify(schema.enum)}`);
  if (schema.anyOf && !schema.anyOf.some((s) => validate(value, s, defs, at).length === 0)) problems.push(`${at}: matches none of anyOf`);
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!Object.hasOwn(obj, key)) problems.push(`${at}: missing ${key}`);
    for (const [key, v] of Object.entries(obj)) {
      const prop = schema.properties?.[key];
      if (prop) problems.push(...validate(v, prop, defs, `${at}.${key}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: unexpected property ${key}`);
      else if (typeof schema.additionalProperties === 'object') problems.push(...validate(v, schema.additionalProperties, defs, `${at}.${key}`));
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((v, i) => problems.push(...validate(v, schema.items!, defs, `${at}[${i}]`)));
  return problems;
}
