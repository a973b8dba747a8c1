#!/usr/bin/env python3
"""oci_inspect.py ARCHIVE [EXTRACT_DIR] - what an OCI archive (podman save
--format oci-archive) really holds, read from its blobs rather than from
podman's own account of it: one key=value line per fact.

  ref=          the index's org.opencontainers.image.ref.name
  arch= os=     the config's platform
  user= entrypoint= cmd=   the config (entrypoint/cmd as JSON)
  label.K=V     each label
  history=layer|empty CREATED_BY   each step of the config's history
  layers=N      layers in the manifest
  layer_gz=B layer_tar=B   the (only or last) layer, compressed and not
  member=TYPE MODE UID:GID SIZE NAME   each entry of every layer's tar
With EXTRACT_DIR, each layer's regular files are written there.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def main():
    arc = tarfile.open(sys.argv[1])
    out = sys.argv[2] if len(sys.argv) > 2 else None

    def blob(desc):
        algo, hexd = desc["digest"].split(":")
        data = arc.extractfile("blobs/%s/%s" % (algo, hexd)).read()
        if hashlib.new(algo, data).hexdigest() != hexd:
            sys.exit("oci_inspect: blob %s: digest mismatch" % desc["digest"])
        return data

    index = json.load(arc.extractfile("index.json"))
    if len(index["manifests"]) != 1:
        sys.exit("oci_inspect: want one manifest, found %d" % len(index["manifests"]))
    m = index["manifests"][0]
    print("ref=%s" % m.get("annotations", {}).get("org.opencontainers.image.ref.name", ""))
    man = json.loads(blob(m))
    cfg = json.loads(blob(man["config"]))
    c = cfg.get("config", {})
    print("arch=%s" % cfg.get("architecture"))
    print("os=%s" % cfg.get("os"))
    print("user=%s" % c.get("User", ""))
    print("entrypoint=%s" % json.dumps(c.get("Entrypoint")))
    print("cmd=%s" % json.dumps(c.get("Cmd")))
    for k, v in sorted((c.get("Labels") or {}).items()):
        print("label.%s=%s" % (k, v))
    # each step of the image's history: did it make a layer, and what made it
    for h in cfg.get("history") or []:
        print("history=%s %s" % ("empty" if h.get("empty_layer") else "layer", h.get("created_by", "")))
    print("layers=%d" % len(man["layers"]))
    for layer in man["layers"]:
        gz = blob(layer)
        raw = gzip.decompress(gz) if layer["mediaType"].endswith("gzip") else gz
        print("layer_gz=%d" % len(gz))
        print("layer_tar=%d" % len(raw))
        t = tarfile.open(fileobj=io.BytesIO(raw))
        for e in t.getmembers():
            kind = "file" if e.isfile() else "dir" if e.isdir() else "other"
            print("member=%s %o %d:%d %d %s" % (kind, e.mode, e.uid, e.gid, e.size, e.name))
            if out and e.isfile():
                path = os.path.join(out, os.path.basename(e.name))
                with open(path, "wb") as f:
                    f.write(t.extractfile(e).read())


if __name__ == "__main__":
    main()
