#!/usr/bin/env python3
"""ds2podman.py - ds.yaml's DaemonSet, turned into what podman runs.

  ds2podman.py flags DS.yaml --node-name NAME   podman run flags, one a line
  ds2podman.py args DS.yaml                     the container's args, one a line
  ds2podman.py pod DS.yaml --node-name NAME --image IMG [--arg A]... [--ns-mode] [--keep-ports] [--keep-fieldref]
                                                a Pod for `podman kube play`: the
                                                template with its image, nodeName
                                                and more args (see pod())

Everything comes from the DaemonSet's pod template: the container's
securityContext (and the pod's, for seccomp), its env and its args. Each
field it knows becomes the podman flag with the same effect; a field it
does not know, or a value it cannot honour, is an error, never dropped.
stderr says what each field became. For `podman run`, hostNetwork is not
carried over: the caller puts the container in a lab namespace (--network
ns:...), the stand-in for the node's own network.
"""
import argparse
import copy
import sys

import yaml


def template(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    ds = [d for d in docs if d.get("kind") == "DaemonSet"]
    if len(ds) != 1:
        sys.exit("ds2podman: want one DaemonSet in %s, found %d" % (path, len(ds)))
    return ds[0]["spec"]["template"]


def say(field, flag):
    print("ds2podman: %s -> %s" % (field, flag or "(nothing: podman's default)"), file=sys.stderr)


def flags(tpl, node):
    spec = tpl["spec"]
    c = spec["containers"][0]
    sc = dict(c.get("securityContext") or {})
    out = []

    def add(field, *f):
        say(field, " ".join(f))
        out.extend(f)

    uid, gid = sc.pop("runAsUser", None), sc.pop("runAsGroup", None)
    if uid is not None:
        add("runAsUser: %s, runAsGroup: %s" % (uid, gid), "--user=%d:%d" % (uid, gid if gid is not None else uid))
    if sc.pop("runAsNonRoot", False) and uid == 0:
        sys.exit("ds2podman: runAsNonRoot with runAsUser 0")
    if sc.pop("privileged", False):
        add("privileged: true", "--privileged")
    if sc.pop("allowPrivilegeEscalation", True) is False:
        add("allowPrivilegeEscalation: false", "--security-opt=no-new-privileges")
    if sc.pop("readOnlyRootFilesystem", False):
        # Kubernetes mounts no writable tmpfs for a read-only root; podman
        # would add /tmp, /run and /var/tmp unless told not to.
        add("readOnlyRootFilesystem: true", "--read-only", "--read-only-tmpfs=false")
    caps = sc.pop("capabilities", {}) or {}
    for cap in caps.get("drop", []):
        add("capabilities.drop: %s" % cap, "--cap-drop=%s" % cap)
    for cap in caps.get("add", []):
        add("capabilities.add: %s" % cap, "--cap-add=%s" % cap)
    sp = sc.pop("seccompProfile", None) or (spec.get("securityContext") or {}).get("seccompProfile")
    kind = (sp or {}).get("type", "RuntimeDefault")
    if kind == "RuntimeDefault":
        say("seccompProfile: RuntimeDefault", "")
    elif kind == "Unconfined":
        add("seccompProfile: Unconfined", "--security-opt=seccomp=unconfined")
    else:
        sys.exit("ds2podman: seccompProfile %s: not supported" % kind)
    if sc:
        sys.exit("ds2podman: securityContext fields not understood: %s" % ", ".join(sorted(sc)))
    for e in c.get("env", []):
        if "value" in e:
            add("env %s" % e["name"], "--env=%s=%s" % (e["name"], e["value"]))
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            add("env %s from spec.nodeName" % e["name"], "--env=%s=%s" % (e["name"], node))
        else:
            sys.exit("ds2podman: env %s: only value or fieldRef spec.nodeName" % e["name"])
    say("hostNetwork: %s" % str(spec.get("hostNetwork", False)).lower(), "(not carried over: the caller's --network ns:)")
    return out


def pod(tpl, node, image, extra, ns_mode, keep_ports, keep_fieldref):
    spec = copy.deepcopy(tpl["spec"])
    meta = tpl.get("metadata", {})
    # kube play resolves fieldRef spec.nodeName from the Pod itself.
    spec["nodeName"] = node
    for c in spec["containers"]:
        c["image"] = image
        c["args"] = list(c.get("args", [])) + extra
        # podman 4.3.1 refuses the downward API's spec.nodeName ("fieldPath
        # spec.nodeName is either not valid or not supported"): the value
        # a kubelet would put there, unless --keep-fieldref.
        for e in c.get("env", []):
            if not keep_fieldref and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
                del e["valueFrom"]
                e["value"] = node
    # As it is, the template keeps hostNetwork: true: podman then leaves the
    # container in its own network namespace, so `ip netns exec LAB podman
    # kube play` puts it in the lab's, the node's stand-in (never run it
    # outside one). --ns-mode is the pod for `kube play --network ns:PATH`
    # instead: hostNetwork off. Either way the ports go, unless
    # --keep-ports (then in --ns-mode containerPort only): podman 4.3.1
    # turns any port into a port mapping and refuses it with host or ns:
    # networking ("PortMappings can only be used with Bridge or slirp4netns
    # networking"). Nothing needs one: the tester listens in the lab's
    # namespace and is scraped from inside it. (podman 4.3.1 refuses
    # --network ns: for pods anyway: "pods presently do not support
    # network mode path".)
    if ns_mode:
        spec["hostNetwork"] = False
        spec.pop("dnsPolicy", None)
    for c in spec["containers"]:
        if not keep_ports:
            c.pop("ports", None)
        elif ns_mode:
            for p in c.get("ports", []):
                p.pop("hostPort", None)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dns-blackhole-tester", "labels": meta.get("labels", {}),
                     "annotations": meta.get("annotations", {})},
        "spec": spec,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["flags", "args", "pod"])
    ap.add_argument("ds")
    ap.add_argument("--node-name", default="")
    ap.add_argument("--image")
    ap.add_argument("--arg", action="append", default=[])
    ap.add_argument("--ns-mode", action="store_true", help="pod: hostNetwork off, no ports (for --network ns:)")
    ap.add_argument("--keep-fieldref", action="store_true", help="pod: keep env fieldRef spec.nodeName")
    ap.add_argument("--keep-ports", action="store_true", help="pod: keep the ports (with --ns-mode: containerPort only)")
    a = ap.parse_args()
    tpl = template(a.ds)
    if a.what == "flags":
        if not a.node_name:
            sys.exit("ds2podman: flags needs --node-name")
        print("\n".join(flags(tpl, a.node_name)))
    elif a.what == "args":
        print("\n".join(tpl["spec"]["containers"][0].get("args", [])))
    else:
        if not (a.node_name and a.image):
            sys.exit("ds2podman: pod needs --node-name and --image")
        yaml.safe_dump(pod(tpl, a.node_name, a.image, a.arg, a.ns_mode, a.keep_ports, a.keep_fieldref), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
