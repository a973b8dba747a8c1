/* tests/check_test.c - check_verdict (check.c), the pure part of `check`:
 * each state's exit status (NPD's OK 0, NonOK 1, Unknown 2) and line,
 * the order in which it decides (a proven stuck flow outranks a failed
 * probe of another VIP; no CAP_NET_ADMIN outranks everything), and the
 * 80-byte bound with the longest VIP and count. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "scan.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

static unsigned long n_checks, n_failed;

static void expect(const char *what, struct scan_counts c, const char *vip, int rc, const char *prefix)
{
	char line[CHECK_LINE_MAX];
	memset(line, 'x', sizeof line);
	int got = check_verdict(&c, vip, line);
	size_t len = strnlen(line, sizeof line);
	n_checks++;
	if (got != rc || strncmp(line, prefix, strlen(prefix)) || len >= CHECK_LINE_MAX) {
		n_failed++;
		printf("FAIL %s: rc %d (want %d), line \"%.*s\" (want \"%s...\"), %zu bytes\n", what, got, rc,
		       (int)len, line, prefix, len);
	}
}

int main(void)
{
	const char *v4 = "10.96.0.10:53", *v6 = "[fd8c:5e2b:1d3a:9f07:1234:5678:9abc:def0]:65535";
	expect("healthy", (struct scan_counts){.examined = 12, .node_view = 1}, v4, 0,
	       "no stuck DNS flow to 10.96.0.10:53 (12 entries)");
	expect("one stuck", (struct scan_counts){.no_dnat = 1, .node_view = 1}, v4, 1,
	       "no_dnat: 1 stuck DNS flow to 10.96.0.10:53 (VIP rule in place)");
	expect("stuck, another VIP's probe failed", (struct scan_counts){.no_dnat = 3, .node_view = 1, .probe_failed = 1},
	       v4, 1, "no_dnat: 3 stuck DNS flows to");
	expect("no CAP_NET_ADMIN", (struct scan_counts){.err = -EPERM, .no_dnat = 3}, v4, 2,
	       "cannot tell: no CAP_NET_ADMIN");
	expect("dump failed", (struct scan_counts){.err = -ENOBUFS}, v4, 2, "cannot tell: conntrack dump failed: ");
	expect("not the node view", (struct scan_counts){.examined = 0}, v4, 2, "cannot tell: not the node view");
	expect("not the node view, probe failed", (struct scan_counts){.probe_failed = 1}, v4, 2,
	       "cannot tell: not the node view");
	expect("node view, probe failed", (struct scan_counts){.node_view = 1, .probe_failed = 1}, v4, 2,
	       "cannot tell: the probe to 10.96.0.10:53 failed");
	expect("restart window", (struct scan_counts){.node_view = 1, .nat_missing = 4}, v4, 2,
	       "cannot tell: 10.96.0.10:53 has no DNAT rule now");
	expect("gone backend", (struct scan_counts){.gone_backend = 2, .node_view = 1}, v4, 1,
	       "gone_backend: 2 stuck DNS flows to 10.96.0.10:53 (VIP rule in place)");
	expect("both kinds", (struct scan_counts){.no_dnat = 1, .gone_backend = 2, .node_view = 1}, v4, 1,
	       "no_dnat: 1, gone_backend: 2 stuck DNS flows to 10.96.0.10:53");
	expect("80 bytes: longest", (struct scan_counts){.no_dnat = UINT64_MAX / 2, .gone_backend = UINT64_MAX / 2,
	       .node_view = 1}, v6, 1, "no_dnat: 9223372036854775807, gone_backend: 9223372036854775807 stuck");
	expect("80 bytes: healthy, longest", (struct scan_counts){.examined = UINT64_MAX, .node_view = 1}, v6, 0,
	       "no stuck DNS flow to [fd8c:");
	printf("check_test: %lu checks, %lu failed\n", n_checks, n_failed);
	return n_failed != 0;
}
