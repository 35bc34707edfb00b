# huggingface_hub against Cairn, as a training script would use it: make a
# repo, upload a folder (a large safetensors file through git LFS and small
# JSON files inline), change one file, delete one, branch and tag; then read
# every revision back. Prints one JSON document of what the client saw; the
# test (test/huggingface-python.test.ts) checks it against what it expects.
#
# Usage: python hf_hub_roundtrip.py REPO WORKDIR WEIGHTS_MB
# (HF_ENDPOINT, HF_TOKEN, HF_HOME in the environment.)
import hashlib
import json
import os
import struct
import sys

from huggingface_hub import HfApi, HfFileSystem, snapshot_download
from huggingface_hub.utils import HfHubHTTPError

repo, workdir, weights_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
api = HfApi()
out = {"version": __import__("huggingface_hub").__version__}


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_digests(root):
    found = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            found[os.path.relpath(p, root).replace(os.sep, "/")] = sha256_of(p)
    return found


def write_safetensors(path, mb):
    """One F32 tensor of `mb` MiB of seeded pseudo-random bytes, in the safetensors layout."""
    n = mb * (1 << 20) // 4
    header = json.dumps({"weight": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    seed = hashlib.sha256(repo.encode()).digest()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        block = seed
        for _ in range(n * 4 // (1 << 16)):
            block = hashlib.sha256(block).digest()
            f.write(block * 2048)


def error_of(fn):
    try:
        fn()
        return None
    except HfHubHTTPError as e:
        return {"status": e.response.status_code, "code": e.response.headers.get("X-Error-Code"), "message": e.response.headers.get("X-Error-Message"), "type": type(e).__name__}


folder = os.path.join(workdir, "model")
os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
write_safetensors(os.path.join(folder, "model.safetensors"), weights_mb)
with open(os.path.join(folder, "config.json"), "w") as f:
    json.dump({"model_type": "tiny", "hidden_size": 8}, f)
with open(os.path.join(folder, "tokenizer.json"), "w") as f:
    json.dump({"vocab": ["a", "b", "c"]}, f)
with open(os.path.join(folder, "sub", "notes.txt"), "w") as f:
    f.write("a file in a folder\n")
out["expected"] = {"initial": tree_digests(folder)}

# create_repo: POST /api/repos/create (hf_api.py create_repo); exist_ok turns 409 into the repo's url
out["create"] = str(api.create_repo(repo))
out["create_again"] = str(api.create_repo(repo, exist_ok=True))
out["create_conflict"] = error_of(lambda: api.create_repo(repo))

# 1: the folder (preupload, LFS batch + PUT + verify, NDJSON commit)
c1 = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="first weights")
# 2: one file changed (inline)
with open(os.path.join(folder, "config.json"), "w") as f:
    json.dump({"model_type": "tiny", "hidden_size": 16}, f)
c2 = api.upload_file(path_or_fileobj=os.path.join(folder, "config.json"), path_in_repo="config.json", repo_id=repo, commit_message="wider")
out["expected"]["second"] = tree_digests(folder)
# 3: one file deleted
c3 = api.delete_file("tokenizer.json", repo_id=repo, commit_message="no tokenizer")
os.remove(os.path.join(folder, "tokenizer.json"))
out["expected"]["third"] = tree_digests(folder)
# the same folder again: nothing to send (the batch API says every object is stored)
c4 = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="same again")
out["commits"] = [c.oid for c in (c1, c2, c3, c4)]
out["commit_urls"] = [c.commit_url for c in (c1, c2, c3, c4)]

# a stale parent_commit is refused (412)
from huggingface_hub import CommitOperationAdd

out["stale_parent"] = error_of(
    lambda: api.create_commit(repo_id=repo, operations=[CommitOperationAdd("x.txt", b"x")], commit_message="stale", parent_commit=c1.oid)
)

# branches and tags: a branch is an alias, a commit to it moves it
api.create_branch(repo, branch="dev", revision=c2.oid)
c5 = api.upload_file(path_or_fileobj=b"on dev\n", path_in_repo="dev.txt", repo_id=repo, revision="dev", commit_message="dev work")
api.create_tag(repo, tag="v1", revision=c2.oid)
out["tag_again"] = error_of(lambda: api.create_tag(repo, tag="v1", revision=c3.oid))
out["commit_to_tag"] = error_of(lambda: api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, revision="v1"))
out["branch_main"] = error_of(lambda: api.create_branch(repo, branch="main"))
out["dev_commit"] = c5.oid

cache = os.path.join(workdir, "cache")
out["snapshots"] = {}
for oid in out["commits"] + [c5.oid, "main", "dev", "v1"]:
    out["snapshots"][oid] = tree_digests(snapshot_download(repo, revision=oid, cache_dir=cache))

refs = api.list_repo_refs(repo)
out["refs"] = {
    "branches": sorted([b.name, b.target_commit] for b in refs.branches),
    "tags": sorted([t.name, t.target_commit] for t in refs.tags),
}
out["log"] = [[c.commit_id, c.title] for c in api.list_repo_commits(repo)]
out["log_dev"] = [[c.commit_id, c.title] for c in api.list_repo_commits(repo, revision="dev")]
out["paths_info"] = sorted(
    [type(p).__name__, p.path, getattr(p, "size", None), getattr(p, "lfs", None) and p.lfs.sha256]
    for p in api.get_paths_info(repo, ["model.safetensors", "sub", "config.json", "missing.bin"], revision=c3.oid)
)
out["models"] = [m.id for m in api.list_models(author=repo.split("/")[0])]
out["models_search"] = [m.id for m in api.list_models(search=repo.split("/")[1])]
who = api.whoami()
out["whoami"] = {"name": who["name"], "orgs": [o["name"] for o in who.get("orgs", [])], "role": who["auth"]["accessToken"]["role"]}
out["info"] = {"sha": api.model_info(repo).sha, "siblings": sorted(s.rfilename for s in api.model_info(repo).siblings)}

fs = HfFileSystem()
out["fs_ls"] = sorted(e["name"] for e in fs.ls(repo, detail=True))
with fs.open(f"{repo}/config.json", "rb") as f:
    out["fs_config"] = json.loads(f.read())
out["fs_ls_sub"] = sorted(fs.ls(f"{repo}/sub", detail=False))

# errors a client can read
out["missing_repo"] = error_of(lambda: api.model_info(repo + "-nope"))
out["missing_revision"] = error_of(lambda: api.model_info(repo, revision="nope"))
print(json.dumps(out))
