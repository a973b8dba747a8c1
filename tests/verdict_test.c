/* tests/verdict_test.c - verdict.c against tests/verdict_table.txt, on
 * every input combination (no root, no sockets):
 *
 *   verdict_test [TABLE]      default tests/verdict_table.txt
 *
 * For each kind of row (v: verdict_of, w: view_of, d: verdict_dns, m:
 * verdict_may_delete) it enumerates every combination of the inputs,
 * finds the first row that matches and compares that row's result with
 * what the code returns. It also fails on a combination no row matches
 * and on a row no combination reaches first (a dead or shadowed row).
 * Each mismatch prints one FAIL line; the last line is a summary. */
#define _POSIX_C_SOURCE 200809L
#include "verdict.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 64
#define MAX_CELLS 16

struct row {
	char kind;
	int line;
	int ncells;
	char cell[MAX_CELLS][48];    /* inputs, then the outputs */
	int hits;                    /* combinations it was the first match for */
};

static struct row rows[MAX_ROWS];
static int nrows;
static unsigned long n_checks, n_failed;

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;
	n_failed++;
	va_start(ap, fmt);
	printf("FAIL verdict_test: ");
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
}

/* Reads the table: returns 0, or -1 after a line saying why. */
static int load(const char *path)
{
	char buf[512];
	FILE *f = fopen(path, "r");
	int line = 0;
	if (!f) {
		perror(path);
		return -1;
	}
	while (fgets(buf, sizeof buf, f)) {
		line++;
		if (buf[0] == '#' || buf[0] == '\n')
			continue;
		if (nrows == MAX_ROWS) {
			fprintf(stderr, "%s:%d: more than %d rows\n", path, line, MAX_ROWS);
			fclose(f);
			return -1;
		}
		struct row *r = &rows[nrows++];
		char *save = NULL, *tok = strtok_r(buf, " \t\n", &save);
		r->kind = tok[0];
		r->line = line;
		while ((tok = strtok_r(NULL, " \t\n", &save)) && r->ncells < MAX_CELLS) {
			if (strcmp(tok, "=>") && snprintf(r->cell[r->ncells++], sizeof r->cell[0], "%s", tok) >= 48) {
				fprintf(stderr, "%s:%d: cell too long\n", path, line);
				fclose(f);
				return -1;
			}
		}
	}
	fclose(f);
	return 0;
}

/* Does cell ("*", "a", "a,b", "lo-hi") match the value's name? */
static int cell_has(const char *cell, const char *name)
{
	char c[48];
	if (!strcmp(cell, "*"))
		return 1;
	snprintf(c, sizeof c, "%s", cell);
	for (char *save = NULL, *t = strtok_r(c, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(t + 1, '-');
		if (!strcmp(t, name))
			return 1;
		if (dash) {               /* a numeric range */
			long v = strtol(name, NULL, 10), lo = strtol(t, NULL, 10), hi = strtol(dash + 1, NULL, 10);
			if (v >= lo && v <= hi)
				return 1;
		}
	}
	return 0;
}

/* The first row of kind k whose first n cells match names[]. */
static struct row *first_match(char k, const char *const *names, int n)
{
	for (int i = 0; i < nrows; i++) {
		struct row *r = &rows[i];
		int ok = r->kind == k && r->ncells >= n;
		for (int c = 0; ok && c < n; c++)
			ok = cell_has(r->cell[c], names[c]);
		if (ok)
			return r;
	}
	return NULL;
}

/* One combination: the row's outputs against got[] (nout names). */
static void expect(char k, const char *const *in, int nin, const char *const *got, int nout)
{
	char desc[256] = "";
	size_t n = 0;
	for (int i = 0; i < nin && n < sizeof desc; i++)
		n += (size_t)snprintf(desc + n, sizeof desc - n, "%s%s", i ? " " : "", in[i]);
	n_checks++;
	struct row *r = first_match(k, in, nin);
	if (!r) {
		fail("no %c row matches %s", k, desc);
		return;
	}
	r->hits++;
	for (int i = 0; i < nout; i++) {
		if (r->ncells < nin + nout || strcmp(r->cell[nin + i], got[i])) {
			char why[320];
			snprintf(why, sizeof why, "%s: code says %s, table says %s", desc, got[i],
			         r->ncells > nin + i ? r->cell[nin + i] : "(nothing)");
			fail("%c row at line %d: %s", k, r->line, why);
			return;
		}
	}
}

static const char *b(int v) { return v ? "1" : "0"; }
static const char *const fresh_names[] = {"none", "no_dnat", "dnat", "answered"};
static const char *const silent_names[] = {"0", "1", "2", "3"};

static void verdict_rows(void)
{
	for (unsigned bits = 0; bits < 1u << 12; bits++) {
		for (int fr = 0; fr < 4; fr++) {
			struct obs o = {
				.proto = bits & 1 ? IPPROTO_TCP : IPPROTO_UDP, .port_ok = bits >> 1 & 1,
				.own_answered = bits >> 2 & 1, .dnat = bits >> 3 & 1, .replied = bits >> 4 & 1,
				.nat_known = bits >> 5 & 1, .asks_dns = bits >> 6 & 1, .reply_moving = bits >> 7 & 1,
				.backend_recent = bits >> 8 & 1, .fresh = (uint8_t)fr, .fresh_same = bits >> 9 & 1,
				.backend_silent = (uint8_t)(bits >> 10 & 3),
			};
			const char *in[] = {bits & 1 ? "tcp" : "udp", b(o.port_ok), b(o.own_answered), b(o.dnat),
			                    b(o.replied), b(o.nat_known), b(o.asks_dns), b(o.reply_moving),
			                    b(o.backend_recent), fresh_names[fr], b(o.fresh_same),
			                    silent_names[o.backend_silent]};
			struct vout v = verdict_of(&o);
			const char *got[] = {verdict_names[v.v], strand_names[v.kind], vact_names[v.act]};
			expect('v', in, 12, got, 3);
			if (!v.why || !*v.why)
				fail("a verdict without a reason");
		}
	}
}

static void view_rows(void)
{
	static const char *const tri[] = {"-1", "0", "1"};
	for (int i = 0; i < 81; i++) {
		struct view_obs o = {(int8_t)(i % 3 - 1), (int8_t)(i / 3 % 3 - 1), (int8_t)(i / 9 % 3 - 1),
		                     (int8_t)(i / 27 % 3 - 1)};
		const char *in[] = {tri[i % 3], tri[i / 3 % 3], tri[i / 9 % 3], tri[i / 27 % 3]};
		const char *got[] = {view_names[view_of(&o)]};
		expect('w', in, 4, got, 1);
	}
}

static void dns_rows(void)
{
	for (unsigned run = 0; run <= 40; run++) {
		char num[16];
		snprintf(num, sizeof num, "%u", run);
		const char *in[] = {num};
		struct vout v = verdict_dns(run);
		const char *got[] = {verdict_names[v.v], strand_names[v.kind], vact_names[v.act]};
		expect('d', in, 1, got, 3);
	}
}

static void delete_rows(void)
{
	for (int i = 0; i < 4 * 4 * 5 * 4; i++) {
		struct vout v = {(enum verdict)(i % 4), K_NONE, (enum vact)(i / 4 % 4), "x"};
		struct heal_policy p = {(enum view)(i / 16 % 5), (uint8_t)(i / 80 % 2), (uint8_t)(i / 160 % 2)};
		const char *in[] = {verdict_names[v.v], vact_names[v.act], view_names[p.view], b(p.heal), b(p.dry_run)};
		const char *got[] = {b(verdict_may_delete(&v, &p))};
		expect('m', in, 5, got, 1);
	}
}

/* fresh_by_order: the node watch's proof by the order things were read
 * in. Each case is one story, told in seq numbers. */
static void order_rows(void)
{
	static const struct {
		const char *story;
		struct order o;
		enum fresh want;
	} c[] = {
		{"an event client, a DNAT'd event read after it", {10, 0, 12, 5, 0}, FRESH_DNAT},
		{"an event client, the DNAT'd event read before it", {10, 0, 8, 5, 0}, FRESH_NONE},
		{"an event client, a stale flow after the DNAT'd one", {10, 0, 12, 5, 13}, FRESH_NO_DNAT},
		{"an event client, a stale flow after it, DNAT'd later", {10, 0, 14, 5, 12}, FRESH_DNAT},
		{"a dumped client, a DNAT'd event read after it, no empty read since", {10, 1, 12, 9, 0}, FRESH_NONE},
		{"a dumped client, a DNAT'd event read after an empty read", {10, 1, 12, 11, 0}, FRESH_DNAT},
		{"a dumped client, the own query sent after the dump", {10, 1, 11, 11, 0}, FRESH_DNAT},
		{"a dumped client, the own query sent with the dump (same seq)", {10, 1, 10, 10, 0}, FRESH_NONE},
		{"a dumped client, a stale flow last", {10, 1, 12, 11, 13}, FRESH_NO_DNAT},
		{"nothing seen since", {10, 0, 0, 0, 0}, FRESH_NONE},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		n_checks++;
		enum fresh got = fresh_by_order(&c[i].o);
		if (got != c[i].want)
			fail("fresh_by_order: %s: %s, want %s", c[i].story, fresh_names[got], fresh_names[c[i].want]);
	}
}

int main(int argc, char **argv)
{
	if (load(argc > 1 ? argv[1] : "tests/verdict_table.txt") < 0)
		return 2;
	verdict_rows();
	view_rows();
	dns_rows();
	delete_rows();
	order_rows();
	for (int i = 0; i < nrows; i++) {
		n_checks++;
		if (!rows[i].hits)
			fail("%c row at line %d is never the first match", rows[i].kind, rows[i].line);
	}
	printf("verdict_test: %d table rows; %lu checks, %lu failed\n", nrows, n_checks, n_failed);
	return n_failed ? 1 : 0;
}
