// Chunk codecs for the main thread; the implementation is codec-core.js,
// shared with the worker threads (see there for why it is plain JavaScript).
export { ChunkCorruptError, codecOf, decodeChunk, encodeChunk, groupBytes, guessLayout, sha256, ungroupBytes, ZSTD_LEVEL } from './codec-core.js';
export type { ChunkHint, CodecName, EncodedChunk } from './codec-core.js';
