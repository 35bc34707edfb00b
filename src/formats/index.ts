// The detectors, in the order they are tried: formats with a magic number
// first, then zip containers (each checks its own members), then formats
// recognised by structure, so a cheap check decides most files and no
// structural parser claims another format's bytes.
import { detectGguf } from './gguf.ts';
import { detectH5, detectKeras } from './keras.ts';
import { detectNumpy } from './numpy.ts';
import { detectOnnx } from './onnx.ts';
import { detectPickle, detectPytorch } from './pytorch.ts';
import { detectSafetensors } from './safetensors.ts';
import { detectSavedModelPb, detectTfjs } from './tensorflow.ts';
import { detectTflite } from './tflite.ts';
import { detectTorchserve } from './torchserve.ts';
import type { Detector } from './types.ts';

export const DETECTORS: Detector[] = [
  detectGguf, // 'GGUF'
  detectTflite, // 'TFL3' at 4
  detectH5, // HDF5 signature
  detectNumpy, // \x93NUMPY, or a zip of .npy members
  detectSafetensors, // u64 header length + JSON header
  detectTorchserve, // zip with MAR-INF/MANIFEST.json
  detectKeras, // zip with config.json (+ model.weights.h5)
  detectPytorch, // zip with data.pkl, or legacy torch magic pickle
  detectPickle, // pickle protocol opcodes, joblib
  detectTfjs, // model.json with a weightsManifest
  detectSavedModelPb, // saved_model.pb
  detectOnnx, // ModelProto by structure
];
