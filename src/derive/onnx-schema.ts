// The ONNX protobuf schema (the official onnx.proto next to this file, parsed
// with protobufjs on first use) and TypeScript shapes for the parts of it the
// transforms touch. Field names are the .proto's own (keepCase). Decoded
// messages carry int64 values as Long objects; new ones may use numbers.
import fs from 'node:fs';
import protobuf from 'protobufjs';

export type Int64 = number | protobuf.Long;

export interface StringStringEntry {
  key?: string;
  value?: string;
}

export interface TensorProto {
  dims?: Int64[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: Int64[];
  name?: string;
  doc_string?: string;
  raw_data?: Uint8Array;
  external_data?: StringStringEntry[];
  data_location?: number;
  double_data?: number[];
  uint64_data?: Int64[];
}

export interface SparseTensorProto {
  values?: TensorProto;
  indices?: TensorProto;
  dims?: Int64[];
}

export interface AttributeProto {
  name?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparse_tensor?: SparseTensorProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  sparse_tensors?: SparseTensorProto[];
  ref_attr_name?: string;
}

export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  attribute?: AttributeProto[];
  doc_string?: string;
}

export interface TensorShapeDimension {
  dim_value?: Int64;
  dim_param?: string;
}

export interface TypeProto {
  tensor_type?: { elem_type?: number; shape?: { dim?: TensorShapeDimension[] } };
  sparse_tensor_type?: { elem_type?: number };
}

export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  doc_string?: string;
}

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparse_initializer?: SparseTensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  value_info?: ValueInfoProto[];
}

export interface OperatorSetId {
  domain?: string;
  version?: Int64;
}

export interface ModelProto {
  ir_version?: Int64;
  opset_import?: OperatorSetId[];
  producer_name?: string;
  producer_version?: string;
  graph?: GraphProto;
  functions?: unknown[];
  training_info?: unknown[];
}

/** TensorProto.DataType values used here. */
export const DT = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
} as const;

/** AttributeProto.AttributeType values used here. */
export const AT = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, TENSORS: 9, GRAPHS: 10 } as const;

export interface OnnxSchema {
  root: protobuf.Root;
  ModelProto: protobuf.Type;
  GraphProto: protobuf.Type;
  NodeProto: protobuf.Type;
  AttributeProto: protobuf.Type;
  TensorProto: protobuf.Type;
  SparseTensorProto: protobuf.Type;
  StringStringEntryProto: protobuf.Type;
}

let schema: OnnxSchema | undefined;

/** The parsed schema (parsed once: it is immutable). */
export function onnxSchema(): OnnxSchema {
  if (schema) return schema;
  const text = fs.readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8');
  const root = protobuf.parse(text, { keepCase: true }).root;
  const type = (name: string): protobuf.Type => root.lookupType(`onnx.${name}`);
  schema = {
    root,
    ModelProto: type('ModelProto'),
    GraphProto: type('GraphProto'),
    NodeProto: type('NodeProto'),
    AttributeProto: type('AttributeProto'),
    TensorProto: type('TensorProto'),
    SparseTensorProto: type('SparseTensorProto'),
    StringStringEntryProto: type('StringStringEntryProto'),
  };
  return schema;
}

export function toNumber(v: Int64 | undefined): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  return (v.unsigned ? v.high >>> 0 : v.high) * 2 ** 32 + (v.low >>> 0); // exact within ±2^53
}
