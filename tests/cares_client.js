#!/usr/bin/env node
// cares_client.js - a real c-ares client (Node's dns.Resolver) under steady
// load, for the namespace lab: the kind of client that keeps its source port.
//
//   node tests/cares_client.js --server 10.0.0.10 [--qtype A|AAAA]
//        [--name kubernetes.default.svc.cluster.local] [--expect 10.96.0.1]
//        [--seconds 10] [--every-ms 5] [--max-inflight 200]
//        [--timeout-ms 1000] [--tries 1]
//
// One Resolver (one c-ares channel, one server) starts a lookup every
// --every-ms milliseconds, never more than --max-inflight at once (a start
// that would exceed it is counted as skipped), each with c-ares' own
// timeout and tries. c-ares closes a UDP socket that has no query in
// flight. Measured in the lab (Node 20's c-ares): while answers come back
// within a millisecond that is most of the time, so lookups go out from new
// ports (some 150 entries a second); once lookups time out, 1 s each, there
// is always one in flight, and the channel keeps one socket (one open
// 4 s after a restart window) whose stale entry catches nearly every lookup
// until it is deleted (ENGINEERING.md section 8).
//
// Output, stdout, one JSON line per second of sending, in order, printed
// once every lookup started in that second has settled:
//   {"sec":0,"t_ms":<epoch ms the second began>,"sent":200,"ok":200,
//    "fail":0,"bad":0,"skipped":0,"errors":{}}
// ok: answered, NOERROR, with --expect in it if given; bad: answered but
// not that; fail: an error (errors counts them by c-ares code, ETIMEOUT
// for no answer). Last line: {"done":true,"sent":N,"ok":N,"fail":N,"bad":N,
// "skipped":N}. Exit 0 when every lookup was ok, 1 otherwise, 2 on bad
// usage. The run is bounded: --seconds of sending (at most 600), or until
// SIGTERM/SIGINT, then the in-flight lookups settle (the last second may be
// partial); a timer ends the process in any case.
'use strict';
const dns = require('dns');

function usage(msg) {
  process.stderr.write('cares_client.js: ' + msg + '\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { qtype: 'A', name: 'kubernetes.default.svc.cluster.local', seconds: 10,
    everyMs: 5, maxInflight: 200, timeoutMs: 1000, tries: 1 };
  const num = { '--seconds': 'seconds', '--every-ms': 'everyMs', '--max-inflight': 'maxInflight',
    '--timeout-ms': 'timeoutMs', '--tries': 'tries' };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i], v = argv[i + 1];
    if (v === undefined) usage(k + ' needs a value');
    if (k in num) {
      if (!/^[0-9]+(\.[0-9]+)?$/.test(v)) usage(k + ': not a number: ' + v);
      o[num[k]] = Number(v);
    } else if (k === '--server') o.server = v;
    else if (k === '--qtype') o.qtype = v;
    else if (k === '--name') o.name = v;
    else if (k === '--expect') o.expect = v;
    else usage('unknown argument ' + k);
  }
  if (!o.server) usage('--server is required');
  if (o.qtype !== 'A' && o.qtype !== 'AAAA') usage('--qtype is A or AAAA');
  if (o.seconds <= 0 || o.seconds > 600) usage('--seconds is more than 0 and at most 600');
  if (o.everyMs < 1 || o.maxInflight < 1 || o.timeoutMs < 1 || o.tries < 1) usage('values must be positive');
  return o;
}

const o = parseArgs(process.argv.slice(2));
const r = new dns.Resolver({ timeout: o.timeoutMs, tries: o.tries });
try {
  r.setServers([o.server]);
} catch (e) {
  usage('--server ' + o.server + ': ' + e.message);
}
const lookup = (o.qtype === 'A' ? r.resolve4 : r.resolve6).bind(r);

const t0 = Date.now();
const buckets = [];      // per second of sending
let inflight = 0, nextOut = 0, stopped = false;
const total = { sent: 0, ok: 0, fail: 0, bad: 0, skipped: 0 };

function bucket(sec) {
  while (buckets.length <= sec) {
    buckets.push({ sec: buckets.length, t_ms: t0 + 1000 * buckets.length, sent: 0, ok: 0,
      fail: 0, bad: 0, skipped: 0, errors: {}, open: 0 });
  }
  return buckets[sec];
}

// Print, in order, each second that has ended and whose lookups settled.
function flush() {
  const now = Math.floor((Date.now() - t0) / 1000);
  while (nextOut < buckets.length && buckets[nextOut].open === 0 &&
         (nextOut < now || stopped)) {
    const b = buckets[nextOut++];
    delete b.open;
    process.stdout.write(JSON.stringify(b) + '\n');
  }
}

function finish() {
  flush();
  process.stdout.write(JSON.stringify(Object.assign({ done: true }, total)) + '\n');
  process.exitCode = total.ok === total.sent && total.skipped === 0 ? 0 : 1;
  clearTimeout(killer);
}

function stop() {
  if (stopped) return;
  clearInterval(ticker);
  stopped = true;
  if (inflight === 0) finish();
}

function start() {
  const sec = Math.floor((Date.now() - t0) / 1000);
  if (sec >= o.seconds) { stop(); return; }
  const b = bucket(sec);
  if (inflight >= o.maxInflight) { b.skipped++; total.skipped++; flush(); return; }
  inflight++; b.open++; b.sent++; total.sent++;
  lookup(o.name, (err, addrs) => {
    inflight--; b.open--;
    if (err) {
      b.fail++; total.fail++;
      b.errors[err.code] = (b.errors[err.code] || 0) + 1;
    } else if (o.expect && !addrs.includes(o.expect)) {
      b.bad++; total.bad++;
    } else {
      b.ok++; total.ok++;
    }
    if (stopped && inflight === 0) finish(); else flush();
  });
}

const ticker = setInterval(start, o.everyMs);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Whatever c-ares does, the process ends: sending time, plus every try's
// timeout, plus a margin.
const killer = setTimeout(() => {
  process.stderr.write('cares_client.js: lookups still in flight at the deadline\n');
  stopped = true;
  flush();
  process.exit(1);
}, o.seconds * 1000 + o.tries * o.timeoutMs * 2 + 3000);
