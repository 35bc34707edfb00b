# transformers against Cairn: push_to_hub of a tiny BERT's config, tokenizer
# and weights, then from_pretrained of each from the hub (a fresh cache).
# Prints one JSON document; test/huggingface-python.test.ts checks it.
#
# Usage: python hf_transformers_roundtrip.py REPO WORKDIR
import json
import os
import sys

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, BertConfig, BertModel, BertTokenizerFast

repo, workdir = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
vocab = os.path.join(workdir, "vocab.txt")
with open(vocab, "w") as f:
    f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "cairn"] + [f"w{i}" for i in range(56)]) + "\n")
tokenizer = BertTokenizerFast(vocab_file=vocab)
model = BertModel(config).eval()

commits = [
    config.push_to_hub(repo, commit_message="config"),
    tokenizer.push_to_hub(repo, commit_message="tokenizer"),
    model.push_to_hub(repo, commit_message="weights"),
]

cache = os.path.join(workdir, "cache")
config2 = AutoConfig.from_pretrained(repo, cache_dir=cache)
tokenizer2 = AutoTokenizer.from_pretrained(repo, cache_dir=cache)
model2 = AutoModel.from_pretrained(repo, cache_dir=cache).eval()
ids = tokenizer2("hello cairn world", return_tensors="pt")
with torch.no_grad():
    same = torch.equal(model(**ids).last_hidden_state, model2(**ids).last_hidden_state)
print(json.dumps({
    "commits": [str(getattr(c, "oid", c)) for c in commits],
    "hidden_size": config2.hidden_size,
    "model_type": config2.model_type,
    "tokens": tokenizer2.convert_ids_to_tokens(ids["input_ids"][0]),
    "tokens_before": tokenizer.convert_ids_to_tokens(tokenizer("hello cairn world")["input_ids"]),
    "files": sorted(__import__("huggingface_hub").HfApi().list_repo_files(repo)),
    "same_output": same,
    "parameters": sum(p.numel() for p in model2.parameters()),
}))
