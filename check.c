/* check.c - `dns-blackhole-tester check`: node-problem-detector's custom
 * plugin protocol (kubernetes/node-problem-detector
 * docs/custom_plugin_monitor.md; pkg/custompluginmonitor/types/types.go:
 * OK = 0, NonOK = 1, Unknown = 2; the message is the plugin's stdout, cut
 * at max_output_length, 80 by default in types/config.go, which also sets
 * the default timeout, 5s). NPD turns 1 into the condition True with the
 * rule's reason, 0 into False with the default reason, 2 into Unknown
 * with the message (custom_plugin_monitor.go, toConditionStatus).
 *
 * It claims what scan proves (the verdict core, verdict.h): an entry to
 * a DNS VIP not DNAT'd and never replied while a fresh probe is DNAT'd
 * (kind no_dnat), or DNAT'd to a backend that stays silent asked
 * straight while a fresh flow is answered (kind gone_backend). Anything it cannot prove is exit 2 with the reason:
 * no CAP_NET_ADMIN, a namespace that translates no flow to the VIP (a
 * pod, or NodeLocal DNSCache's NOTRACK), a rule missing right now (a
 * restart window: its entries are not stuck yet), a probe that failed. */
#define _GNU_SOURCE
#include "check.h"
#include "log.h"
#include "opts.h"
#include "scan.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK_MAX_VIPS 16

static const char check_usage[] =
"Usage: " PROG " check [-d VIP[:PORT]]...\n"
"node-problem-detector's custom plugin: is a DNS flow on this node stuck on a\n"
"stale conntrack entry (kubernetes/kubernetes#126468)? One line on stdout, at\n"
"most 80 bytes.\n"
"\n"
"  -d, --server VIP[:PORT]   the DNS VIP (repeatable; default: resolv.conf's\n"
"                            nameserver, port 53)\n"
"\n"
"Exit status (NPD's): 0 nothing stuck; 1 a stuck flow proven (kind, count);\n"
"2 cannot tell (no CAP_NET_ADMIN, not the node's view, a restart window now),\n"
"or a usage error.\n";

/* The line, cut at CHECK_LINE_MAX - 1 bytes on purpose: NPD would cut it. */
static void msg(char *line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg(char *line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, CHECK_LINE_MAX, fmt, ap);
	va_end(ap);
}

int check_verdict(const struct scan_counts *c, const char *vip, char *line)
{
	if (c->err == -EPERM)
		msg(line, "cannot tell: no CAP_NET_ADMIN to read conntrack");
	else if (c->err)
		msg(line, "cannot tell: conntrack dump failed: %s", strerror(-c->err));
	else if (c->no_dnat || c->gone_backend) {
		if (c->no_dnat && c->gone_backend)
			msg(line, "no_dnat: %llu, gone_backend: %llu stuck DNS flows to %s",
			    (unsigned long long)c->no_dnat, (unsigned long long)c->gone_backend, vip);
		else
			msg(line, "%s: %llu stuck DNS flow%s to %s (VIP rule in place)",
			    c->no_dnat ? "no_dnat" : "gone_backend", (unsigned long long)(c->no_dnat + c->gone_backend),
			    c->no_dnat + c->gone_backend == 1 ? "" : "s", vip);
		return 1;
	} else if (!c->node_view)
		msg(line, "cannot tell: not the node view (no NAT'd flow to %s)", vip);
	else if (c->probe_failed)
		msg(line, "cannot tell: the probe to %s failed", vip);
	else if (c->nat_missing)
		msg(line, "cannot tell: %s has no DNAT rule now (restart window?)", vip);
	else {
		msg(line, "no stuck DNS flow to %s (%llu entries)", vip, (unsigned long long)c->examined);
		return 0;
	}
	return 2;
}

/* -d VIPs into v (default: resolv.conf's): their count, or -1 after a
 * line on stdout (NPD shows stdout), or 0 for --help. */
static int check_args(int argc, char **argv, struct ct_tuple *v, char *line)
{
	static const struct option lo[] = {
		{"server", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0},
	};
	struct sockaddr_storage ss;
	char why[200];
	int c, n = 0;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:d:h", lo, NULL)) != -1) {
		const char *err = NULL;
		if (c == 'h')
			return 0;
		if (c == '?' || c == ':')
			opts_refused(c, argc, argv, lo, why, sizeof why), err = why;
		else if (n == CHECK_MAX_VIPS)
			err = "too many -d";
		else if ((err = parse_addr(optarg, 53, 0, &ss)) == NULL)
			sockaddr_to_tuple(&ss, &v[n++]);
		if (err)
			{
			msg(line, "usage: %s", err);
			return -1;
		}
	}
	if (optind < argc)
		{
		msg(line, "usage: unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (n == 0 && default_server("/etc/resolv.conf", &ss, why, sizeof why))
		{
		msg(line, "cannot tell: %s", why);
		return -1;
	}
	if (n == 0)
		sockaddr_to_tuple(&ss, &v[n++]);
	return n;
}

int check_main(int argc, char **argv)
{
	struct ct_tuple v[CHECK_MAX_VIPS];
	struct scan_counts c;
	char line[CHECK_LINE_MAX], vip[64], out[CHECK_LINE_MAX + 1];
	int rc = 2, n = check_args(argc, argv, v, line);
	if (n == 0)
		return write_all(STDOUT_FILENO, check_usage, sizeof check_usage - 1) < 0 ? 2 : 0;
	if (n > 0) {
		ct_ntop(v[0].family, v[0].dst.b, out, sizeof out);
		snprintf(vip, sizeof vip, v[0].family == AF_INET6 ? "[%s]:%u" : "%s:%u", out, v[0].dport);
		/* scan_dump says so on stdout when it retries a dump: NPD takes
		 * stdout as the message, so it goes nowhere meanwhile */
		int keep = dup(STDOUT_FILENO), hole = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (hole < 0)
			hole = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);   /* writes just fail */
		if (keep >= 0 && hole >= 0)
			dup2(hole, STDOUT_FILENO);
		scan_count(v, (size_t)n, &c);
		if (keep >= 0 && hole >= 0)
			dup2(keep, STDOUT_FILENO);
		if (hole >= 0)
			close(hole);
		if (keep >= 0)
			close(keep);
		rc = check_verdict(&c, vip, line);
	}
	/* one line, newline included, within the 80 bytes */
	int len = snprintf(out, sizeof out, "%.*s\n", CHECK_LINE_MAX - 1, line);
	write_all(STDOUT_FILENO, out, (size_t)len);
	return rc;
}
