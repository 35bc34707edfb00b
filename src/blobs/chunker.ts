// Content-defined chunking for the main thread (tests, tools); the
// implementation is chunker-core.js, shared with the worker threads that
// chunk uploads (see there for why it is plain JavaScript).
export { Chunker, DEFAULT_CHUNKING } from './chunker-core.js';
export type { ChunkerOptions } from './chunker-core.js';
