// Types of session-host.js (plain JavaScript, shared with the worker threads).
import type { Tensor, TensorSpec } from './tensors.ts';

export interface SessionHost {
  load(msg: { key: string; path: string; options: Record<string, unknown> }): Promise<{ inputs: TensorSpec[]; outputs: TensorSpec[] }>;
  run(msg: { key: string; feeds: Record<string, Tensor>; fetches?: string[] }): Promise<{ reply: { outputs: Record<string, Tensor> }; transfer: ArrayBuffer[] }>;
  release(msg: { key: string }): Promise<Record<string, never>>;
}

export function createSessionHost(): SessionHost;
