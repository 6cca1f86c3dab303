#!/usr/bin/python3
"""Build a fixture image as an OCI layout from random local data (no network).

make_oci.py OUT --tag v1 --sizes 1024,1048576,20971520 [--platforms amd64,arm64]

With one platform the tag points at an image manifest; with several it points at an image index
whose platform manifests share the layers given by --sizes and each add one small layer of its own.
Each layer is a gzip'd tar holding one file of random bytes. Prints a JSON summary to stdout:
{"tag": ..., "top": digest, "top_media_type": ..., "platforms": {arch: {manifest, config,
 layers: [...], diff_ids: [...]}}}
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def put(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.root, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def make_layer(name, size):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("data")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1700000000
        tar.addfile(d)
        info = tarfile.TarInfo("data/%s.bin" % name)
        info.size, info.mode, info.mtime = size, 0o644, 1700000000
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    tar_bytes = raw.getvalue()
    gz = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return gz, "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tag", default="v1")
    ap.add_argument("--sizes", default="1024,1048576")
    ap.add_argument("--platforms", default="amd64")
    args = ap.parse_args()
    lay = Layout(args.out)
    shared = []
    for i, size in enumerate(int(s) for s in args.sizes.split(",")):
        gz, diff = make_layer("shared-%d-%d" % (i, size), size)
        shared.append((lay.put(gz, OCI_LAYER), diff))
    platforms = args.platforms.split(",")
    summary = {"tag": args.tag, "platforms": {}}
    descs = []
    for arch in platforms:
        layers = list(shared)
        if len(platforms) > 1:
            gz, diff = make_layer("only-" + arch, 4096)
            layers.append((lay.put(gz, OCI_LAYER), diff))
        config = {"architecture": arch, "os": "linux",
                  "config": {"Cmd": ["/data"], "Labels": {"pantry.interop": args.out}},
                  "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
                  "history": [{"created_by": "make_oci.py layer %d" % i} for i in range(len(layers))]}
        cdesc = lay.put(json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc,
                    "layers": [desc for desc, _ in layers]}
        mdesc = lay.put(json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST)
        mdesc["platform"] = {"architecture": arch, "os": "linux"}
        descs.append(mdesc)
        summary["platforms"][arch] = {"manifest": mdesc["digest"], "config": cdesc["digest"],
                                      "layers": [d["digest"] for d, _ in layers],
                                      "layer_sizes": [d["size"] for d, _ in layers],
                                      "diff_ids": [d for _, d in layers]}
    if len(descs) > 1:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}
        top = lay.put(json.dumps(index, sort_keys=True).encode(), OCI_INDEX)
    else:
        top = dict(descs[0])
        top.pop("platform")
    summary["top"], summary["top_media_type"] = top["digest"], top["mediaType"]
    top["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]}, f)
    json.dump(summary, __import__("sys").stdout, indent=1)


if __name__ == "__main__":
    main()
