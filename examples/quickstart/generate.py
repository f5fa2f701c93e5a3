#!/usr/bin/env python3
"""Writes the quickstart's staging registry: OCI image layouts under
staging/, one per image, each a two-platform (linux/amd64, linux/arm64)
index over small images with real gzip tar layers. Deterministic: the same
bytes, hence the same digests, every time. Prints the digests for
promoter.yaml."""

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
STAGING = os.path.join(HERE, "staging")


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue(), gzip.compress(raw.getvalue(), mtime=0)


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def image(name, version, platforms):
    layout = os.path.join(STAGING, name)
    os.makedirs(layout, exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    shared_tar, shared_gz = layer({"etc/motd": b"promoted by promoter\n"})
    manifests = []
    for arch in platforms:
        own_tar, own_gz = layer({f"usr/share/{name}/{arch}": f"{name} {version} {arch}\n".encode()})
        layers = [shared_gz, own_gz]
        config = {
            "architecture": arch,
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in (shared_tar, own_tar)],
            },
            "config": {"Labels": {"org.opencontainers.image.version": version}},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **put_blob(layout, canonical(config))),
            "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **put_blob(layout, l)) for l in layers],
        }
        desc = put_blob(layout, canonical(manifest))
        manifests.append(dict(mediaType=manifest["mediaType"], platform={"architecture": arch, "os": "linux"}, **desc))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    top = put_blob(layout, canonical(index))
    ref = dict(mediaType=index["mediaType"], annotations={"org.opencontainers.image.ref.name": version}, **top)
    with open(os.path.join(layout, "index.json"), "w") as f:
        f.write(canonical({"schemaVersion": 2, "manifests": [ref]}).decode())
    return top["digest"]


if __name__ == "__main__":
    shutil.rmtree(STAGING, ignore_errors=True)
    for name, version in [("hello", "v1.0.0"), ("tools/echo", "v0.3.1")]:
        print(name, version, image(name, version, ["amd64", "arm64"]))
