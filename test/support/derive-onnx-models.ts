// Python sources the ONNX derive tests run: a small model builder (Conv with
// initializer and Constant-node weights, a batch norm whose variance does not
// fit float16, Resize — a float32-only operator, int64 shape arithmetic,
// Cast to float, MatMul, Gemm with transB, an If whose branches hold weights
// and read outer values, an int64 output), a samples writer, and a checker
// that validates a derived model (onnx.checker full check, ONNX Runtime) and
// measures it against its parent with the same arithmetic as the TypeScript.

/** argv: out.onnx opset softmax(0|1) [big_elements] */
export const BUILD_MODEL = `
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto as T
out, opset, softmax = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1'
big = int(sys.argv[4]) if len(sys.argv) > 4 else 0
rng = np.random.default_rng(11)
f32 = lambda *s, scale=0.2: (rng.standard_normal(s) * scale).astype(np.float32)
init = lambda name, a: numpy_helper.from_array(a, name)
const = lambda name, a: helper.make_node('Constant', [], [name], name=name + '_node', value=numpy_helper.from_array(a, name))
nodes, inits = [], []
inits += [init('W1', f32(8, 3, 3, 3)), init('B1', f32(8))]
nodes.append(helper.make_node('Conv', ['x', 'W1', 'B1'], ['c1'], pads=[1, 1, 1, 1], name='conv1'))
# batch norm with a variance far beyond float16's range (as in PP-OCRv4's detector)
nodes += [const('bn_scale', (rng.random(8) + 0.5).astype(np.float32)), const('bn_bias', f32(8)),
          const('bn_mean', f32(8, scale=30)), const('bn_var', (rng.random(8) * 1e7 + 1e6).astype(np.float32))]
nodes.append(helper.make_node('BatchNormalization', ['c1', 'bn_scale', 'bn_bias', 'bn_mean', 'bn_var'], ['bn'], epsilon=1e-5, name='bn'))
nodes.append(helper.make_node('Mul', ['bn', 'bn_gain'], ['bn_scaled'], name='gain'))
inits.append(init('bn_gain', np.array([300.0], np.float32)))
nodes.append(helper.make_node('Relu', ['bn_scaled'], ['r1'], name='relu1'))
nodes += [const('roi', np.array([], np.float32)), const('scales', np.array([1, 1, 2, 2], np.float32))]
nodes.append(helper.make_node('Resize', ['r1', 'roi', 'scales'], ['up'], mode='nearest', name='resize'))
nodes.append(const('W2', f32(4, 8, 3, 3)))
nodes.append(helper.make_node('Conv', ['up', 'W2'], ['c2'], strides=[2, 2], pads=[1, 1, 1, 1], name='conv2'))
# int64 shape arithmetic, and a Cast to float that feeds float math
nodes += [helper.make_node('Shape', ['c2'], ['shape'], name='shape'), const('zero', np.array([0], np.int64)),
          helper.make_node('Gather', ['shape', 'zero'], ['batch'], axis=0, name='gather'),
          const('minus_one', np.array([-1], np.int64)),
          helper.make_node('Concat', ['batch', 'minus_one'], ['flat_shape'], axis=0, name='concat'),
          helper.make_node('Reshape', ['c2', 'flat_shape'], ['flat'], name='reshape'),
          helper.make_node('Cast', ['batch'], ['batch_f'], to=T.FLOAT, name='cast_batch')]
inits += [init('W3', f32(4 * 16 * 16, 16, scale=0.05)), init('B3', f32(16))]
nodes += [helper.make_node('MatMul', ['flat', 'W3'], ['m'], name='matmul'), helper.make_node('Add', ['m', 'B3'], ['a'], name='add'),
          helper.make_node('Mul', ['a', 'batch_f'], ['a_scaled'], name='mul_batch')]
# an If whose branches hold a Constant weight and read outer values
cond_nodes = [helper.make_node('ReduceMean', ['x'], ['mean'], keepdims=0, name='mean'), const('thresh', np.array(0.0, np.float32)),
              helper.make_node('Greater', ['mean', 'thresh'], ['cond'], name='greater')]
then_g = helper.make_graph([const('Wt', f32(16, 16)), helper.make_node('MatMul', ['a_scaled', 'Wt'], ['t_out'], name='then_mm')],
                           'then', [], [helper.make_tensor_value_info('t_out', T.FLOAT, None)])
else_g = helper.make_graph([const('We', f32(16, 16)), helper.make_node('MatMul', ['a_scaled', 'We'], ['e_out'], name='else_mm')],
                           'else', [], [helper.make_tensor_value_info('e_out', T.FLOAT, None)])
nodes += cond_nodes + [helper.make_node('If', ['cond'], ['branch'], then_branch=then_g, else_branch=else_g, name='if')]
inits += [init('W4', f32(10, 16)), init('B4', f32(10))]
nodes.append(helper.make_node('Gemm', ['branch', 'W4', 'B4'], ['logits'], transB=1, name='gemm'))
nodes.append(helper.make_node('Softmax' if softmax else 'Sigmoid', ['logits'], ['probs'], name='head', **({'axis': -1} if softmax else {})))
nodes.append(helper.make_node('ArgMax', ['logits'], ['label'], axis=1, keepdims=0, name='argmax'))
if big:
    inits.append(init('Wbig', f32(16, big // 16)))
    nodes.append(helper.make_node('MatMul', ['a', 'Wbig'], ['big_out'], name='big_matmul'))
outputs = [helper.make_tensor_value_info('probs', T.FLOAT, [None, 10]), helper.make_tensor_value_info('label', T.INT64, [None])]
if big: outputs.append(helper.make_tensor_value_info('big_out', T.FLOAT, [None, big // 16]))
g = helper.make_graph(nodes, 'derive_test', [helper.make_tensor_value_info('x', T.FLOAT, ['batch', 3, 16, 16])], outputs, inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)], producer_name='cairn-derive-test')
m.ir_version = 7
onnx.checker.check_model(m, full_check=True)
onnx.save(m, out)
`;

/** argv: out.safetensors count — inputs for x, as samples `<i>/x` */
export const WRITE_SAMPLES = `
import sys, numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(5)
count = int(sys.argv[2])
save_file({f'{i}/x': (rng.standard_normal((1, 3, 16, 16)) + (0.5 if i % 2 else -0.5)).astype(np.float32) for i in range(count)}, sys.argv[1])
`;

/**
 * argv: parent.onnx derived.onnx samples.safetensors. Prints JSON: checker
 * result, ORT outputs compared (max/mean abs error, cosine over all samples),
 * and the derived graph's structure (opset, op types, tensor types).
 */
export const CHECK_DERIVED = `
import sys, json, numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper
from safetensors.numpy import load_file
parent, derived, samples = sys.argv[1:4]
res = {}
m = onnx.load(derived)
try:
    onnx.checker.check_model(m, full_check=True); res['checker'] = 'ok'
except Exception as e:
    res['checker'] = str(e)[:500]
feeds = {}
for k, v in load_file(samples).items():
    i, name = k.split('/', 1); feeds.setdefault(int(i), {})[name] = v
feeds = [feeds[i] for i in sorted(feeds)]
so = ort.SessionOptions(); so.intra_op_num_threads = 1
a = ort.InferenceSession(parent, so, providers=['CPUExecutionProvider'])
b = ort.InferenceSession(derived, so, providers=['CPUExecutionProvider'])
res['inputs'] = {i.name: i.type for i in b.get_inputs()}
res['outputs'] = {}
for o in a.get_outputs():
    xs = [a.run([o.name], f)[0].astype(np.float64).ravel() for f in feeds]
    ys = [b.run([o.name], f)[0].astype(np.float64).ravel() for f in feeds]
    x = np.concatenate(xs); y = np.concatenate(ys)
    d = np.abs(x - y)
    res['outputs'][o.name] = {'type': [t.type for t in b.get_outputs() if t.name == o.name][0], 'max': float(d.max()), 'mean': float(d.mean()),
                              'cosine': float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))}
def graphs(g):
    yield g
    for n in g.node:
        for at in n.attribute:
            if at.type == onnx.AttributeProto.GRAPH: yield from graphs(at.g)
tensors = {}
ops = {}
for g in graphs(m.graph):
    for t in g.initializer: tensors[t.name] = (t.data_type, list(t.dims))
    for n in g.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
        if n.op_type == 'Constant':
            for at in n.attribute:
                if at.name == 'value': tensors[n.output[0]] = (at.t.data_type, list(at.t.dims))
res['opset'] = [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')][0]
res['ops'] = ops
res['tensors'] = tensors
res['nodes'] = {n.name: {'op': n.op_type, 'inputs': list(n.input), 'outputs': list(n.output), 'attrs': {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute if a.type in (1, 2, 7)}} for g in graphs(m.graph) for n in g.node}
# dequantised weights against the parent's
pm = onnx.load(parent)
def values(model):
    out = {}
    for g in graphs(model.graph):
        for t in g.initializer: out[t.name] = numpy_helper.to_array(t)
        for n in g.node:
            if n.op_type == 'Constant' and n.attribute[0].name == 'value': out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out
pv, dv = values(pm), values(m)
res['weights'] = {}
for g in graphs(m.graph):
    for n in g.node:
        if n.op_type == 'DequantizeLinear':
            q, s = dv[n.input[0]].astype(np.float64), dv[n.input[1]].astype(np.float64)
            axis = n.attribute[0].i
            shape = [1] * q.ndim; shape[axis] = -1
            w = pv[n.output[0]].astype(np.float64)
            wmax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
            res['weights'][n.output[0]] = {'axis': axis, 'q_dtype': str(dv[n.input[0]].dtype), 'max_error_over_half_scale': float((np.abs(q * s.reshape(shape) - w) / (s.reshape(shape) / 2)).max()),
                                           'scale_is_max_over_127': bool(np.allclose(s, np.where(wmax > 0, wmax / 127, 1), rtol=1e-6))}
res['zeros'] = {}
for k, v in dv.items():
    if v.dtype.kind == 'f' and v.ndim >= 2 and k in pv and pv[k].shape == v.shape:
        p = np.abs(pv[k].astype(np.float64)).ravel(); zero = v.ravel() == 0; changed = v.ravel() != pv[k].ravel()
        res['zeros'][k] = {'zeros': float(zero.mean()), 'only_zeroed': bool(zero[changed].all()) if changed.any() else True,
                           'order_ok': bool(p[zero].max(initial=0) <= p[~zero].min(initial=np.inf))}
print(json.dumps(res))
`;

/** argv: out.onnx samples.safetensors — graph outputs straight from a Constant, a Relu also read by another node, ConstantOfShape without a value, a Loop carrying float state, Constant value_floats, an explicit data_location DEFAULT. */
export const BUILD_EDGE_MODEL = `
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto as T
from safetensors.numpy import save_file
out, samples = sys.argv[1:3]
c = lambda name, **kw: helper.make_node('Constant', [], [name], name=name + '_node', **kw)
body = helper.make_graph(
    [c('half', value=numpy_helper.from_array(np.array(0.5, np.float32))), helper.make_node('Mul', ['s', 'half'], ['s2'], name='body_mul'),
     helper.make_node('Identity', ['cond_in'], ['cond_out'], name='body_cond')],
    'body', [helper.make_tensor_value_info('i', T.INT64, []), helper.make_tensor_value_info('cond_in', T.BOOL, []), helper.make_tensor_value_info('s', T.FLOAT, [2, 4])],
    [helper.make_tensor_value_info('cond_out', T.BOOL, []), helper.make_tensor_value_info('s2', T.FLOAT, [2, 4])])
nodes = [
    helper.make_node('Relu', ['x'], ['y1'], name='relu'),
    helper.make_node('Add', ['y1', 'bias'], ['y2'], name='add'),
    c('const_out', value_floats=[2.5, -1.0, 3.0]),
    helper.make_node('Shape', ['x'], ['x_shape'], name='shape'),
    helper.make_node('ConstantOfShape', ['x_shape'], ['zeros'], name='zeros'),
    helper.make_node('Add', ['zeros', 'y1'], ['z'], name='add_zeros'),
    helper.make_node('Loop', ['n', '', 'x'], ['looped'], body=body, name='loop'),
]
g = helper.make_graph(nodes, 'edge', [helper.make_tensor_value_info('x', T.FLOAT, [2, 4]), helper.make_tensor_value_info('n', T.INT64, [])],
                      [helper.make_tensor_value_info(n, T.FLOAT, [3] if n == 'const_out' else [2, 4]) for n in ['y1', 'y2', 'const_out', 'z', 'looped']],
                      [numpy_helper.from_array(np.array([0.1, 0.2, 0.3, 0.4], np.float32), 'bias')])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 7
m.graph.initializer[0].data_location = onnx.TensorProto.DEFAULT  # written out explicitly: data in the file, not external
assert m.graph.initializer[0].HasField('data_location')
onnx.checker.check_model(m, full_check=True)
onnx.save(m, out)
rng = np.random.default_rng(1)
save_file({**{f'{i}/x': rng.standard_normal((2, 4)).astype(np.float32) for i in range(3)}, **{f'{i}/n': np.array(i + 1, np.int64) for i in range(3)}}, samples)
`;
