/* fuzz_http.c - libFuzzer target for metrics.c's http_parse_request().
 *
 * Input: the bytes a client sent so far (at most the 2048 of a client
 * slot), in an exact-size heap copy: "never reads past len" is checked
 * by ASan. As the metrics server calls it, with cap = 2048:
 *   - the status is 0 (headers incomplete), 200, 400, 404, 405 or 431;
 *   - 0 only while len < cap (a full buffer must get an answer);
 *   - *head is 0 or 1, and 1 only for a HEAD that got 200 or 404.
 * Called again with cap = len (the buffer is full): never 0, and the
 * same status whenever the first call already had one. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 2048

static void die(const char *what)
{
	fprintf(stderr, "fuzz_http: invariant broken: %s\n", what);
	abort();
}
#define CHECK(c) do { if (!(c)) die(#c); } while (0)

static int valid_status(int rc)
{
	return rc == 0 || rc == 200 || rc == 400 || rc == 404 || rc == 405 || rc == 431;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = size < CAP ? size : CAP;
	char *buf = malloc(len ? len : 1);
	CHECK(buf);
	memcpy(buf, data, len);

	int head = -1;
	int rc = http_parse_request(buf, len, CAP, &head);
	CHECK(valid_status(rc));
	CHECK(rc != 0 || len < CAP);
	CHECK(head == 0 || head == 1);
	CHECK(!head || rc == 200 || rc == 404);

	int head2 = -1;
	int rc2 = http_parse_request(buf, len, len, &head2);
	CHECK(valid_status(rc2) && rc2 != 0);
	CHECK(head2 == 0 || head2 == 1);
	if (rc)
		CHECK(rc2 == rc && head2 == head);
	else
		CHECK(rc2 == 431);
	free(buf);
	return 0;
}
