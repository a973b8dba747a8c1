#!/usr/bin/env node
// validate.js - offline checks of Kubernetes manifests, as the API server
// would make them, without a cluster.
//
//   node tests/k8s/validate.js [--dump] FILE|- ...
//
// For every YAML document:
//  1. the schema: kubernetes-models' validate() (types, enums, required);
//  2. unknown fields: kubernetes-models' validators accept any extra key,
//     so a typo such as readOnlyRootFileSystem would pass them (and kubectl
//     apply would drop it, or refuse it with --validate=strict): every key
//     is checked against the field list of the models' type declarations;
//  3. what the API server checks beyond the schema: object, container and
//     port names, label syntax, a DaemonSet selector that selects its own
//     template, hostPort == containerPort under hostNetwork.
// Prints "ok KIND/NAME" per document, or one line per error, and exits 1
// on any error (2 on a usage error). --dump prints the documents as a
// JSON array instead (for the per-property checks in tests/t_ship.sh).
//
// The packages come from tests/k8s/package.json, installed with npm into
// build/k8s (K8S_NODE_DIR overrides): they are never committed.
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const nodeDir = process.env.K8S_NODE_DIR ||
	path.join(__dirname, "..", "..", "build", "k8s");
const req = createRequire(path.join(nodeDir, "package.json"));
const YAML = req("yaml");
const modelsDir = path.dirname(req.resolve("kubernetes-models/package.json"));
const apimDir = path.dirname(req.resolve("@kubernetes-models/apimachinery/package.json"));

// ---- field lists from the models' .d.ts ---------------------------------
// interface long name (IIoK8sApiAppsV1DaemonSetSpec) -> { field: type text }
const iface = new Map();

function parseDts(file) {
	const text = fs.readFileSync(file, "utf8");
	const local = new Map();
	const re = /^export interface (\w+)[^{\n]*\{\n([\s\S]*?)^\}/gm;
	let m;
	while ((m = re.exec(text))) {
		const props = {};
		// A field: 4 spaces, "name"?: type; (a map type spans lines).
		const pre = /^    "([^"]+)"\??: ([\s\S]*?);\n(?=    "|    \/\*\*|$)/gm;
		let p;
		const body = m[2].replace(/^\s*\/\*\*[\s\S]*?\*\/\n/gm, "");
		while ((p = pre.exec(body))) props[p[1]] = p[2].trim();
		local.set(m[1], props);
	}
	const ex = /^export \{([^}]*)\}/m.exec(text);
	if (ex)
		for (const part of ex[1].split(",")) {
			const [a, b] = part.trim().split(/\s+as\s+/);
			if (b && local.has(a)) iface.set(b, local.get(a));
		}
}

function walkDts(dir) {
	for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
		const f = path.join(dir, e.name);
		if (e.isDirectory()) {
			if (e.name !== "node_modules" && e.name !== "_schemas") walkDts(f);
		} else if (e.name.endsWith(".d.ts")) parseDts(f);
	}
}

// Type text -> { kind: "obj"|"arr"|"map"|"leaf", of }
function typeOf(t) {
	let m;
	if ((m = /^Array<([\s\S]*)>$/.exec(t))) return { kind: "arr", of: m[1].trim() };
	if ((m = /^\{\s*\[key: string\]: ([\s\S]*?);\s*\}$/.exec(t))) return { kind: "map", of: m[1].trim() };
	if (/^I\w+$/.test(t) && iface.has(t)) return { kind: "obj", of: t };
	return { kind: "leaf" };
}

function unknownFields(v, t, at, errs) {
	if (v === null || v === undefined) return;
	const ty = typeOf(t);
	if (ty.kind === "arr" && Array.isArray(v))
		v.forEach((x, i) => unknownFields(x, ty.of, `${at}[${i}]`, errs));
	else if (ty.kind === "map" && typeof v === "object")
		for (const k of Object.keys(v)) unknownFields(v[k], ty.of, `${at}.${k}`, errs);
	else if (ty.kind === "obj" && typeof v === "object" && !Array.isArray(v)) {
		const props = iface.get(ty.of);
		for (const k of Object.keys(v)) {
			if (!(k in props)) errs.push(`unknown field ${at ? at + "." : ""}${k}`);
			else unknownFields(v[k], props[k], at ? `${at}.${k}` : k, errs);
		}
	}
}

// ---- what the API server adds to the schema ------------------------------
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUB = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function checkLabels(labels, at, errs) {
	for (const [k, val] of Object.entries(labels || {})) {
		const slash = k.lastIndexOf("/");
		const prefix = slash >= 0 ? k.slice(0, slash) : "";
		const name = slash >= 0 ? k.slice(slash + 1) : k;
		if (prefix && (prefix.length > 253 || !DNS1123_SUB.test(prefix)))
			errs.push(`${at}: label key ${k}: prefix is not a DNS subdomain`);
		if (name.length > 63 || !LABEL_NAME.test(name))
			errs.push(`${at}: label key ${k}: bad name part`);
		if (typeof val !== "string" || val.length > 63 || (val !== "" && !LABEL_NAME.test(val)))
			errs.push(`${at}: label ${k}: bad value ${JSON.stringify(val)}`);
	}
}

function checkName(kind, meta, errs) {
	const n = meta && meta.name;
	if (!n) return errs.push("metadata.name is missing");
	// Services and Namespaces: DNS-1035 / DNS-1123 labels; most others subdomains.
	const [re, what, max] =
		kind === "Service" ? [DNS1035_LABEL, "a DNS-1035 label", 63] :
		kind === "Namespace" ? [DNS1123_LABEL, "a DNS-1123 label", 63] :
		[DNS1123_SUB, "a DNS-1123 subdomain", 253];
	if (n.length > max || !re.test(n)) errs.push(`metadata.name ${n}: not ${what}`);
	if (meta.namespace && !DNS1123_LABEL.test(meta.namespace))
		errs.push(`metadata.namespace ${meta.namespace}: not a DNS-1123 label`);
}

function checkPod(spec, at, errs) {
	if (!spec) return;
	for (const c of [].concat(spec.initContainers || [], spec.containers || [])) {
		if (!DNS1123_LABEL.test(c.name || "")) errs.push(`${at}: container name ${c.name}: not a DNS-1123 label`);
		for (const p of c.ports || []) {
			if (p.name !== undefined && !(p.name.length <= 15 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name) &&
				/[a-z]/.test(p.name) && !p.name.includes("--")))
				errs.push(`${at}: port name ${p.name}: not an IANA service name`);
			if (p.containerPort < 1 || p.containerPort > 65535) errs.push(`${at}: containerPort ${p.containerPort}`);
			if (spec.hostNetwork && p.hostPort !== undefined && p.hostPort !== p.containerPort)
				errs.push(`${at}: hostNetwork: hostPort ${p.hostPort} must equal containerPort ${p.containerPort}`);
		}
	}
}

function checkWorkload(doc, errs) {
	const spec = doc.spec || {};
	const tmpl = spec.template || {};
	const tl = (tmpl.metadata && tmpl.metadata.labels) || {};
	checkLabels(tl, "spec.template.metadata.labels", errs);
	const sel = (spec.selector && spec.selector.matchLabels) || {};
	if (Object.keys(sel).length === 0) errs.push("spec.selector.matchLabels is empty");
	for (const [k, v] of Object.entries(sel))
		if (tl[k] !== v) errs.push(`spec.selector ${k}=${v} does not select the pod template`);
	checkPod(tmpl.spec, "spec.template.spec", errs);
}

// ---- models ---------------------------------------------------------------
function modelFor(apiVersion, kind) {
	const mod = apiVersion === "v1" ? "v1" : apiVersion; // group/version
	const dts = path.join(modelsDir, mod, `${kind}.d.ts`);
	if (!/^[\w.\/-]+$/.test(mod) || !/^\w+$/.test(kind) || !fs.existsSync(dts)) return null;
	const cls = req(`kubernetes-models/${mod}/${kind}`)[kind];
	const m = /^export \{\s*\w+ as (\w+)/m.exec(fs.readFileSync(dts, "utf8"));
	return cls && m ? { cls, root: m[1] } : null;
}

function validateDoc(doc) {
	const errs = [];
	if (!doc || typeof doc !== "object" || Array.isArray(doc)) return ["not a mapping"];
	const m = modelFor(doc.apiVersion, doc.kind);
	if (!m) return [`unknown apiVersion/kind ${doc.apiVersion}/${doc.kind}`];
	try {
		new m.cls(doc).validate();
	} catch (e) {
		errs.push(`schema: ${String(e.message).replace(/\s+/g, " ")}`);
	}
	unknownFields(doc, m.root, "", errs);
	checkName(doc.kind, doc.metadata, errs);
	checkLabels(doc.metadata && doc.metadata.labels, "metadata.labels", errs);
	if (["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet"].includes(doc.kind)) checkWorkload(doc, errs);
	if (doc.kind === "Service" && doc.spec) checkLabels(doc.spec.selector, "spec.selector", errs);
	return errs;
}

function main(argv) {
	let dump = false;
	const files = [];
	for (const a of argv) {
		if (a === "--dump") dump = true;
		else if (a === "-" || !a.startsWith("-")) files.push(a);
		else { console.error(`validate: unknown option ${a}`); return 2; }
	}
	if (!files.length) { console.error("usage: validate.js [--dump] FILE|- ..."); return 2; }
	walkDts(modelsDir);
	walkDts(apimDir);
	let bad = 0;
	const all = [];
	for (const f of files) {
		const text = fs.readFileSync(f === "-" ? 0 : f, "utf8");
		const docs = YAML.parseAllDocuments(text);
		let n = 0;
		for (const d of docs) {
			n++;
			const where = `${f === "-" ? "<stdin>" : f}: document ${n}`;
			if (d.errors.length || d.warnings.length) {
				for (const e of d.errors.concat(d.warnings)) console.log(`${where}: yaml: ${e.message.split("\n")[0]}`);
				bad++;
				continue;
			}
			const doc = d.toJS();
			if (doc === null) continue;        // an empty document (a trailing ---)
			all.push(doc);
			const id = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
			const errs = validateDoc(doc);
			for (const e of errs) console.log(`${where} ${id}: ${e}`);
			if (errs.length) bad++;
			else if (!dump) console.log(`ok ${id}`);
		}
		if (n === 0) { console.log(`${f}: no YAML document`); bad++; }
	}
	if (dump) process.stdout.write(JSON.stringify(all) + "\n");
	return bad ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
