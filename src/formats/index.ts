// The detectors, in the order they are tried: formats with a magic number
// first, then those recognised by structure, so a cheap check decides most
// files and no structural parser claims another format's bytes.
import type { Detector } from './types.ts';

export const DETECTORS: Detector[] = [];
