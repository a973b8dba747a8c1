/* tests/kproxy_test.c - unit tests for kproxy.c's pure parts: the verdict
 * on each version line (the release notes' boundaries, one below and at
 * each), kubernetes_build_info in real exposition text, and the HTTP
 * response parser on whole, cut, chunked and hostile answers. Every
 * answer is handed over in a heap block of exactly its length (ASan
 * catches a read one byte too far). */
#define _GNU_SOURCE
#include "kproxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long n_checks, n_failed;
#define CHECK(ok, ...) do { n_checks++; if (!(ok)) { n_failed++; printf("FAIL line %d: ", __LINE__); \
	printf(__VA_ARGS__); printf("\n"); } } while (0)

static void judge(const char *v, int metric, enum tri fix, enum tri rec)
{
	struct kproxy_info in;
	kproxy_judge(v, metric, &in);
	CHECK(in.window_fix == fix && in.reconciler == rec, "%s metric=%d: window_fix=%s reconciler=%s",
	      v ? v : "(null)", metric, tri_names[in.window_fix], tri_names[in.reconciler]);
}

static void verdicts(void)
{
	judge("v1.27.16", 0, TRI_NO, TRI_NO);
	judge("v1.28.13", 0, TRI_NO, TRI_NO);
	judge("v1.28.14", 0, TRI_YES, TRI_NO);
	judge("v1.29.8", 0, TRI_NO, TRI_NO);
	judge("v1.29.9", 0, TRI_YES, TRI_NO);
	judge("v1.30.4", 0, TRI_NO, TRI_NO);
	judge("v1.30.5", 0, TRI_YES, TRI_NO);
	judge("v1.31.0", 0, TRI_NO, TRI_NO);
	judge("v1.31.1", 0, TRI_YES, TRI_NO);
	judge("v1.31.1-eks-1234", 0, TRI_YES, TRI_NO);
	judge("v1.31.1+k3s1", 0, TRI_YES, TRI_NO);
	judge("v1.31.1-rc.0", 0, TRI_UNKNOWN, TRI_NO);
	judge("v1.32.0", 0, TRI_YES, TRI_YES);
	judge("v1.32.0-rc.1", 0, TRI_UNKNOWN, TRI_UNKNOWN);
	judge("v1.33.2", 1, TRI_YES, TRI_YES);
	judge("v1.35.0", 0, TRI_YES, TRI_YES);
	judge(NULL, 0, TRI_UNKNOWN, TRI_UNKNOWN);
	judge(NULL, 1, TRI_UNKNOWN, TRI_YES);
	judge("1.31.1", 0, TRI_UNKNOWN, TRI_UNKNOWN);
	judge("v2.0.0", 0, TRI_UNKNOWN, TRI_UNKNOWN);
	judge("v1.31", 0, TRI_UNKNOWN, TRI_UNKNOWN);
	judge("v1.31.1x", 0, TRI_UNKNOWN, TRI_UNKNOWN);
	judge("v1.31.99999999999", 0, TRI_UNKNOWN, TRI_UNKNOWN);
}

static int build_info(const char *text, char *ver, int *rm)
{
	size_t n = strlen(text);
	char *b = malloc(n ? n : 1);
	memcpy(b, text, n);
	int r = kproxy_build_info(b, n, ver, 48, rm);
	free(b);
	return r;
}

static void metrics_text(void)
{
	char v[48];
	int rm;
	static const char real[] =
	    "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version\n"
	    "# TYPE kubernetes_build_info gauge\n"
	    "kubernetes_build_info{build_date=\"2024-09-11T21:22:08Z\",compiler=\"gc\",git_commit=\"948afe5ca072329a73c8e79ed5938717a5cb3d21\","
	    "git_tree_state=\"clean\",git_version=\"v1.31.1\",go_version=\"go1.22.6\",major=\"1\",minor=\"31\",platform=\"linux/amd64\"} 1\n"
	    "kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09\n";
	CHECK(build_info(real, v, &rm) == 0 && !strcmp(v, "v1.31.1") && !rm, "real text: %s", v);
	CHECK(build_info("kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family=\"IPv4\"} 3\n"
	                 "kubernetes_build_info{git_version=\"v1.33.1\"} 1", v, &rm) == 0 && rm && !strcmp(v, "v1.33.1"),
	      "reconciler metric, no final newline");
	CHECK(build_info("# kubeproxy_conntrack_reconciler_x\n", v, &rm) < 0 && !rm, "a comment is no metric");
	CHECK(build_info("kubernetes_build_info{git_version=\"v1.31.1\n\"} 1\n", v, &rm) < 0, "value cut by a newline");
	CHECK(build_info("kubernetes_build_info{git_version=\"v1.31.1 evil\"} 1\n", v, &rm) < 0, "space in value");
	CHECK(build_info("kubernetes_build_info{git_version=\"v1.31.1", v, &rm) < 0, "cut at the end");
	CHECK(build_info("kubernetes_build_info{git_version=\"\"} 1\n", v, &rm) < 0, "empty");
	CHECK(build_info("kubernetes_build_info{git_version=\"v1.2345678901234567890123456789012345678901234567890\"} 1\n",
	                 v, &rm) < 0, "too long");
	CHECK(build_info("", v, &rm) < 0, "empty body");
}

/* kproxy_response on a heap copy of exactly s's length. */
static int resp(const char *s, int eof, int *st, char *out, size_t *olen, const char **why)
{
	size_t n = strlen(s);
	char *b = malloc(n ? n : 1), *body;
	memcpy(b, s, n);
	int r = kproxy_response(b, n, eof, st, &body, olen, why);
	if (r == 0)
		memcpy(out, body, *olen);
	free(b);
	return r;
}

static void http(void)
{
	char out[256];
	size_t ol;
	int st;
	const char *why = "";
	CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\niptables", 0, &st, out, &ol, &why) == 0 &&
	      ol == 8 && !memcmp(out, "iptables", 8), "content-length");
	CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nipt", 0, &st, out, &ol, &why) == 1, "cut: more");
	CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nipt", 1, &st, out, &ol, &why) < 0 &&
	      !strcmp(why, "malformed"), "cut at eof");
	CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nipta\r\n4;x=y\r\nbles\r\n0\r\n\r\n", 0,
	           &st, out, &ol, &why) == 0 && ol == 8 && !memcmp(out, "iptables", 8), "chunked");
	CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nipta\r\n", 0, &st, out, &ol, &why) == 1,
	      "chunked, cut: more");
	CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nipta\r\n", 1, &st, out, &ol, &why) < 0,
	      "chunked, cut at eof");
	CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nipta\r\n", 0, &st, out, &ol, &why) < 0,
	      "chunk size not hex");
	CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\niptaXX", 0, &st, out, &ol, &why) < 0,
	      "chunk not followed by CRLF");
	CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n", 0, &st, out, &ol, &why) < 0,
	      "chunk size past 9 digits");
	CHECK(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", 1, &st, out, &ol, &why) < 0, "gzip");
	CHECK(resp("HTTP/1.0 200 OK\r\n\r\nnftables\n", 1, &st, out, &ol, &why) == 0 && ol == 9, "to eof");
	CHECK(resp("HTTP/1.0 200 OK\r\n\r\nnftables\n", 0, &st, out, &ol, &why) == 1, "to eof: more");
	CHECK(resp("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, &st, out, &ol, &why) < 0 && st == 404 &&
	      !strcmp(why, "status"), "404");
	CHECK(resp("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", 0, &st, out, &ol, &why) == 0, "no reason phrase");
	CHECK(resp("HTTP/1.1 2000 OK\r\n\r\n", 1, &st, out, &ol, &why) < 0 && !strcmp(why, "malformed"), "4 digits");
	CHECK(resp("SSH-2.0-OpenSSH\r\n\r\n", 1, &st, out, &ol, &why) < 0 && !strcmp(why, "malformed"), "not HTTP");
	CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 1, &st, out, &ol, &why) < 0, "negative length");
	CHECK(resp("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", 0, &st, out, &ol, &why) < 0,
	      "length past 9 digits");
	CHECK(resp("HTTP/1.1 200 OK\r\nX: y", 0, &st, out, &ol, &why) == 1, "headers cut: more");
	CHECK(resp("HTTP/1.1 200 OK\r\nX: y", 1, &st, out, &ol, &why) < 0, "headers cut at eof");
	CHECK(resp("", 1, &st, out, &ol, &why) < 0, "nothing at eof");
}

int main(void)
{
	verdicts();
	metrics_text();
	http();
	printf("kproxy_test: %lu checks, %lu failed\n", n_checks, n_failed);
	return n_failed != 0;
}
