#!/usr/bin/env node
// ds-props.js - one check per property that ds.yaml promises.
//
//   node tests/k8s/ds-props.js ds.yaml
//
// Prints "ok NAME" or "bad NAME: why" per property (tests/t_ship.sh turns
// each line into a PASS or FAIL). The schema itself is validate.js's job.
// From the environment, what t_ship.sh measured on the real binary:
//   MEASURED_RSS_KIB        peak RSS (VmHWM) of a run
//   MEASURED_CPU_MILLICORES its CPU use at one query a second
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");
const nodeDir = process.env.K8S_NODE_DIR || path.join(__dirname, "..", "..", "build", "k8s");
const YAML = createRequire(path.join(nodeDir, "package.json"))("yaml");

const file = process.argv[2];
if (!file) { console.error("usage: ds-props.js ds.yaml"); process.exit(2); }
const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS()).filter(Boolean);

let failed = 0;
function prop(name, fn) {
	let why;
	try { why = fn(); } catch (e) { why = `threw ${e.message}`; }
	if (why === true || why === undefined) console.log(`ok ${name}`);
	else { failed++; console.log(`bad ${name}: ${why}`); }
}
const eq = (got, want, what) =>
	JSON.stringify(got) === JSON.stringify(want) ? true : `${what} is ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;

// Kubernetes quantities: "8Mi" -> bytes, "5m" -> millicores.
function bytes(q) {
	const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(String(q));
	if (!m) throw new Error(`bad memory quantity ${q}`);
	const mul = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[m[2]] || 1;
	return Number(m[1]) * mul;
}
function millis(q) {
	const m = /^(\d+(?:\.\d+)?)(m)?$/.exec(String(q));
	if (!m) throw new Error(`bad cpu quantity ${q}`);
	return m[2] ? Number(m[1]) : Number(m[1]) * 1000;
}

const ds = docs.find((d) => d.kind === "DaemonSet");
const ns = docs.find((d) => d.kind === "Namespace");
const pod = (ds && ds.spec.template.spec) || {};
const c = (pod.containers || [])[0] || {};
const sc = c.securityContext || {};
const ann = (ds && ds.spec.template.metadata.annotations) || {};
const args = c.args || [];

prop("one DaemonSet, one container", () => (ds && pod.containers.length === 1) || "want one DaemonSet with one container");
prop("namespace: its own, created by the same file", () =>
	(ns && ds.metadata.namespace === ns.metadata.name && ns.metadata.name === "dns-blackhole-tester") ||
	`DaemonSet namespace ${ds.metadata.namespace}, Namespace ${ns && ns.metadata.name}`);
prop("namespace allows hostNetwork + NET_ADMIN (pod-security privileged)", () =>
	eq(ns.metadata.labels["pod-security.kubernetes.io/enforce"], "privileged", "enforce label"));
prop("labels: name=dns-blackhole-tester on pods, selected by the selector", () =>
	(ds.spec.template.metadata.labels.name === "dns-blackhole-tester" &&
	 ds.spec.selector.matchLabels.name === "dns-blackhole-tester") || "name label missing");
prop("hostNetwork: true", () => eq(pod.hostNetwork, true, "hostNetwork"));
prop("dnsPolicy: ClusterFirstWithHostNet", () => eq(pod.dnsPolicy, "ClusterFirstWithHostNet", "dnsPolicy"));
prop("no DNS server IP to edit (no -d/--server in args)", () =>
	!args.some((a) => /^(-d|--server)/.test(a)) || `args ${JSON.stringify(args)}`);
prop("tolerations: every taint (operator Exists, no key, no effect)", () =>
	(pod.tolerations || []).some((t) => t.operator === "Exists" && !t.key && !t.effect) || "no catch-all toleration");
prop("priorityClassName: system-node-critical", () => eq(pod.priorityClassName, "system-node-critical", "priorityClassName"));
prop("resources: cpu and memory requests and limits, requests <= limits", () => {
	const r = c.resources || {};
	for (const k of ["cpu", "memory"])
		if (!(r.requests && r.requests[k] && r.limits && r.limits[k])) return `no ${k} request and limit`;
	if (millis(r.requests.cpu) > millis(r.limits.cpu)) return "cpu request > limit";
	if (bytes(r.requests.memory) > bytes(r.limits.memory)) return "memory request > limit";
	if (bytes(r.limits.memory) > 64 * 1024 ** 2 || millis(r.limits.cpu) > 200) return "limits not small";
});
prop("memory request >= 4x the measured peak RSS", () => {
	const rss = Number(process.env.MEASURED_RSS_KIB);
	if (!(rss > 0) || !Number.isFinite(rss)) return `MEASURED_RSS_KIB not a positive measurement: '${process.env.MEASURED_RSS_KIB}'`;
	const req = bytes(c.resources.requests.memory);
	return req >= 4 * rss * 1024 || `request ${req} B < 4 x ${rss} KiB`;
});
prop("cpu request >= 10x the measured use at 1 query/s", () => {
	// An empty, zero or unparsable measurement proves nothing: 10 x 0 is
	// below any request.
	const v = process.env.MEASURED_CPU_MILLICORES;
	const m = Number(v);
	if (v === undefined || v.trim() === "" || !(m > 0) || !Number.isFinite(m))
		return `MEASURED_CPU_MILLICORES not a positive measurement: '${v === undefined ? "unset" : v}'`;
	const req = millis(c.resources.requests.cpu);
	return req >= 10 * m || `request ${req}m < 10 x ${m}m`;
});
prop("capabilities: drop ALL, add only NET_ADMIN (no NET_RAW)", () =>
	eq(sc.capabilities, { drop: ["ALL"], add: ["NET_ADMIN"] }, "capabilities"));
prop("readOnlyRootFilesystem: true", () => eq(sc.readOnlyRootFilesystem, true, "readOnlyRootFilesystem"));
prop("allowPrivilegeEscalation: false", () => eq(sc.allowPrivilegeEscalation, false, "allowPrivilegeEscalation"));
prop("not privileged", () => sc.privileged !== true || "privileged: true");
prop("seccomp RuntimeDefault (pod and container)", () =>
	((pod.securityContext || {}).seccompProfile || {}).type === "RuntimeDefault" &&
	(sc.seccompProfile || {}).type === "RuntimeDefault" || "seccompProfile not RuntimeDefault");
prop("runAsUser 0, runAsNonRoot false", () =>
	(sc.runAsUser === 0 && sc.runAsNonRoot === false) || `runAsUser ${sc.runAsUser} runAsNonRoot ${sc.runAsNonRoot}`);
prop("NODE_NAME from the downward API (spec.nodeName)", () => {
	const e = (c.env || []).find((x) => x.name === "NODE_NAME");
	return eq(e && e.valueFrom && e.valueFrom.fieldRef && e.valueFrom.fieldRef.fieldPath, "spec.nodeName", "NODE_NAME fieldPath");
});
prop("metrics: args --metrics-addr 0.0.0.0:PORT, PORT not CoreDNS's 9153", () => {
	const i = args.indexOf("--metrics-addr");
	const m = i >= 0 && /^0\.0\.0\.0:(\d+)$/.exec(args[i + 1] || "");
	if (!m) return `args ${JSON.stringify(args)}`;
	return m[1] !== "9153" || "9153 is CoreDNS's metrics port";
});
prop("metrics: containerPort = hostPort = the --metrics-addr port, TCP, named", () => {
	const port = Number((args[args.indexOf("--metrics-addr") + 1] || "").split(":")[1]);
	const p = (c.ports || []).find((x) => x.containerPort === port);
	return (p && p.hostPort === port && (p.protocol || "TCP") === "TCP" && !!p.name) || `no port ${port} with hostPort`;
});
prop("metrics: scrape annotations match the port and path", () => {
	const port = (args[args.indexOf("--metrics-addr") + 1] || "").split(":")[1];
	return (ann["prometheus.io/scrape"] === "true" && ann["prometheus.io/port"] === port &&
		ann["prometheus.io/path"] === "/metrics") || `annotations ${JSON.stringify(ann)}`;
});
prop("image: the placeholder REGISTRY/dns-blackhole-tester:TAG", () =>
	eq(c.image, "REGISTRY/dns-blackhole-tester:TAG", "image"));
prop("no service account token (never talks to the API)", () =>
	eq(pod.automountServiceAccountToken, false, "automountServiceAccountToken"));

process.exit(failed ? 1 : 0);
