"""Small ONNX models for the inference server's tests, and Python onnxruntime
as the reference that the server's outputs are compared with.

  python infer_models.py build <dir>   writes the models below into <dir>
  python infer_models.py run           stdin: [{"model": path, "feeds": {name: tensor}}]
                                       stdout: [{name: tensor}] (every output)

A tensor is {"dtype": numpy dtype name, "shape": [...], "b64": raw little-endian
bytes} for numbers and booleans, {"dtype": "str", "shape", "data": [...]} for strings.
"""
import base64
import json
import sys

import numpy as np


def build(out):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def save(graph, name):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="cairn-tests")
        model.ir_version = 8
        onnx.save(model, f"{out}/{name}")

    def const(name, array):
        return numpy_helper.from_array(np.asarray(array), name)

    rng = np.random.default_rng(7)

    # gemm-v1, gemm-v2: y = x W + b, and the row norms; dynamic batch N.
    # The two versions differ in their weights, and the bias says which one it is.
    for version, offset in ((1, 1000.0), (2, 2000.0)):
        w = rng.standard_normal((4, 3)).astype(np.float32)
        b = (np.arange(3, dtype=np.float32) + offset).astype(np.float32)
        graph = helper.make_graph(
            [
                helper.make_node("Gemm", ["x", "W", "B"], ["y"]),
                helper.make_node("ReduceSumSquare", ["y"], ["norm"], axes=[1], keepdims=0),
            ],
            "gemm",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]), helper.make_tensor_value_info("norm", TensorProto.FLOAT, ["N"])],
            [const("W", w), const("B", b)],
        )
        save(graph, f"gemm-v{version}.onnx")

    # gemm-v1 with its weights in an external data file, as exporters write big models
    import os
    os.makedirs(f"{out}/external", exist_ok=True)
    model = onnx.load(f"{out}/gemm-v1.onnx")
    onnx.save_model(model, f"{out}/external/model.onnx", save_as_external_data=True, all_tensors_to_one_file=True, location="weights.data", size_threshold=0)

    # conv: a small conv net, batchable
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 8, 8])],
        [const("W", rng.standard_normal((2, 1, 3, 3)).astype(np.float32)), const("B", np.array([0.1, -0.1], dtype=np.float32))],
    )
    save(graph, "conv.onnx")

    # embed: int64 ids in; float embeddings, int64 and bool out
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["emb"]),
            helper.make_node("Add", ["ids", "one"], ["next"]),
            helper.make_node("Greater", ["ids", "five"], ["big"]),
        ],
        "embed",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "L"])],
        [
            helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", "L", 4]),
            helper.make_tensor_value_info("next", TensorProto.INT64, ["N", "L"]),
            helper.make_tensor_value_info("big", TensorProto.BOOL, ["N", "L"]),
        ],
        [const("table", rng.standard_normal((10, 4)).astype(np.float32)), const("one", np.array(1, dtype=np.int64)), const("five", np.array(5, dtype=np.int64))],
    )
    save(graph, "embed.onnx")

    # stateful, shaped like silero: x [N, T], state [2, N, 8], sr (a scalar) -> y [N, 1], stateN [2, N, 8]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=[1], keepdims=1),
            helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
            helper.make_node("Div", ["srf", "rate"], ["k"]),
            helper.make_node("Mul", ["m", "k"], ["mk"]),
            helper.make_node("Sigmoid", ["mk"], ["y"]),
            helper.make_node("Unsqueeze", ["m", "axis0"], ["m3"]),
            helper.make_node("Add", ["state", "m3"], ["s"]),
            helper.make_node("Tanh", ["s"], ["stateN"]),
        ],
        "stateful",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T"]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "N", 8]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1]), helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, "N", 8])],
        [const("rate", np.array(16000.0, dtype=np.float32)), const("axis0", np.array([0], dtype=np.int64))],
    )
    save(graph, "stateful.onnx")

    # strings: text through; an output named *_bytes comes back as {"b64"} in TF Serving's API
    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["text_out"]), helper.make_node("Identity", ["text"], ["text_bytes"])],
        "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("text_out", TensorProto.STRING, ["N"]), helper.make_tensor_value_info("text_bytes", TensorProto.STRING, ["N"])],
    )
    save(graph, "strings.onnx")

    # half: float16 in and out
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["twice"]), helper.make_node("Cast", ["x"], ["wide"], to=TensorProto.FLOAT)],
        "half",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", 2])],
        [helper.make_tensor_value_info("twice", TensorProto.FLOAT16, ["N", 2]), helper.make_tensor_value_info("wide", TensorProto.FLOAT, ["N", 2])],
    )
    save(graph, "half.onnx")

    # broken: a well-formed ModelProto that ONNX Runtime refuses (an operator that does not exist)
    graph = helper.make_graph(
        [helper.make_node("NoSuchOperator", ["x"], ["y"])],
        "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, f"{out}/broken.onnx")


def decode(t):
    if t["dtype"] == "str":
        return np.array(t["data"], dtype=object).reshape(t["shape"])
    return np.frombuffer(base64.b64decode(t["b64"]), dtype=np.dtype(t["dtype"]).newbyteorder("<")).reshape(t["shape"])


def encode(a):
    a = np.asarray(a)
    if a.dtype == object or a.dtype.kind in "US":
        return {"dtype": "str", "shape": list(a.shape), "data": [str(x) for x in a.reshape(-1)]}
    return {"dtype": a.dtype.name, "shape": list(a.shape), "b64": base64.b64encode(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()).decode()}


def run():
    import onnxruntime as ort

    sessions = {}
    results = []
    for case in json.load(sys.stdin):
        path = case["model"]
        if path not in sessions:
            sessions[path] = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        session = sessions[path]
        feeds = {name: decode(t) for name, t in case["feeds"].items()}
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, feeds)
        results.append({name: encode(value) for name, value in zip(names, outputs)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "run":
        run()
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")
