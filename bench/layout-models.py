# Safetensors files with real models' layouts (names, shapes, order) for
# `storage-efficiency.ts --v2-of`: what matters there is where tensors start
# and end. Weights are normal-distributed with per-tensor scales (not real
# values). Also the PP-OCR detector's real F32 weights cast to F16.
#
#   python3 -m venv /tmp/v && /tmp/v/bin/pip install --retries 0 numpy safetensors
#   /tmp/v/bin/python bench/layout-models.py OUT_DIR [/work/shared/models]
import os
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

out = sys.argv[1]
models = sys.argv[2] if len(sys.argv) > 2 else '/work/shared/models'
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)


def w(*shape, scale=0.02):
    return rng.standard_normal(shape, dtype=np.float32) * scale


def norm(n):
    return 1 + w(n, scale=0.05)


def f16(tensors):
    return {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in tensors.items()}


src = os.path.join(models, 'ppocr-det.fp32.safetensors')
if os.path.exists(src):
    with np.errstate(over='ignore'):  # a few batch-norm statistics overflow F16 (inf), as a plain cast would
        save_file(f16(load_file(src)), os.path.join(out, 'ppocr-det.f16.safetensors'))

# MiniLM-L12-H384 (BERT layout): 295 KiB attention matrices, 768-byte biases and norms
H, L, I, V = 384, 12, 1536, 30522
bert = {'embeddings.word_embeddings.weight': w(V, H), 'embeddings.position_embeddings.weight': w(512, H),
        'embeddings.token_type_embeddings.weight': w(2, H), 'embeddings.LayerNorm.weight': norm(H),
        'embeddings.LayerNorm.bias': w(H), 'pooler.dense.weight': w(H, H), 'pooler.dense.bias': w(H)}
for l in range(L):
    p = f'encoder.layer.{l}.'
    for m in ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']:
        bert[p + m + '.weight'] = w(H, H)
        bert[p + m + '.bias'] = w(H)
    bert[p + 'attention.output.LayerNorm.weight'] = norm(H)
    bert[p + 'attention.output.LayerNorm.bias'] = w(H)
    bert[p + 'intermediate.dense.weight'] = w(I, H)
    bert[p + 'intermediate.dense.bias'] = w(I)
    bert[p + 'output.dense.weight'] = w(H, I)
    bert[p + 'output.dense.bias'] = w(H)
    bert[p + 'output.LayerNorm.weight'] = norm(H)
    bert[p + 'output.LayerNorm.bias'] = w(H)
save_file(f16(bert), os.path.join(out, 'minilm-like.f16.safetensors'))

# a small LLaMA (d 512, 8 layers, GQA): 128 KiB k/v projections, 1 KiB norms
D, L, F, KV, V = 512, 8, 1408, 128, 32000
llama = {'model.embed_tokens.weight': w(V, D), 'lm_head.weight': w(V, D), 'model.norm.weight': norm(D)}
for l in range(L):
    p = f'model.layers.{l}.'
    llama[p + 'self_attn.q_proj.weight'] = w(D, D)
    llama[p + 'self_attn.k_proj.weight'] = w(KV, D)
    llama[p + 'self_attn.v_proj.weight'] = w(KV, D)
    llama[p + 'self_attn.o_proj.weight'] = w(D, D)
    llama[p + 'mlp.gate_proj.weight'] = w(F, D)
    llama[p + 'mlp.up_proj.weight'] = w(F, D)
    llama[p + 'mlp.down_proj.weight'] = w(D, F)
    llama[p + 'input_layernorm.weight'] = norm(D)
    llama[p + 'post_attention_layernorm.weight'] = norm(D)
save_file(f16(llama), os.path.join(out, 'llama-like.f16.safetensors'))

# ResNet-50 (torchvision names): conv kernels of 16 KiB to 9 MiB, batch-norm vectors, an int64 counter each
resnet = {}


def conv(n, o, i, k):
    resnet[n + '.weight'] = w(o, i, k, k, scale=(2 / (i * k * k)) ** 0.5)


def bn(n, c):
    resnet[n + '.weight'] = norm(c)
    resnet[n + '.bias'] = w(c, scale=0.1)
    resnet[n + '.running_mean'] = w(c, scale=0.5)
    resnet[n + '.running_var'] = np.abs(1 + w(c, scale=0.3))
    resnet[n + '.num_batches_tracked'] = np.array(100000, dtype=np.int64)


conv('conv1', 64, 3, 7)
bn('bn1', 64)
inC = 64
for li, (blocks, width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)]):
    for b in range(blocks):
        p = f'layer{li + 1}.{b}.'
        conv(p + 'conv1', width, inC, 1)
        bn(p + 'bn1', width)
        conv(p + 'conv2', width, width, 3)
        bn(p + 'bn2', width)
        conv(p + 'conv3', width * 4, width, 1)
        bn(p + 'bn3', width * 4)
        if b == 0:
            conv(p + 'downsample.0', width * 4, inC, 1)
            bn(p + 'downsample.1', width * 4)
        inC = width * 4
resnet['fc.weight'] = w(1000, 2048)
resnet['fc.bias'] = w(1000)
save_file(resnet, os.path.join(out, 'resnet50-like.f32.safetensors'))
save_file(f16(resnet), os.path.join(out, 'resnet50-like.f16.safetensors'))
