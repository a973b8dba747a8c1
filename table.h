/* table.h - the node watch's two tables: the VIP:ports it has met
 * (keys, by VIP:port) and the clients it tracks on them (by flow).
 *
 * Both are arrays hashed by index, grown on demand (doubled) up to their
 * bounds (--node-max-keys, --node-max-clients); every link is a uint32_t
 * index, NIL for none. A key holds its unproven clients on a list of its
 * own; every stuck client is on one list, newest at its head. At the
 * keys' bound the least recently active key that may go is evicted (an
 * LRU list; targets are pinned). What is tracked is dated by the
 * watch's clock and event order, which the watch sets here (now, seq,
 * gen) before it calls in. Nothing here calls the watch or the probes. */
#ifndef TABLE_H
#define TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "nl.h"
#include "opts.h"

#define NIL UINT32_MAX

enum { F_PENDING, F_SUSPECT, F_STUCK };
enum { SK_NO_DNAT, SK_GONE, NSK };      /* the stuck gauge's kinds */

struct counters;

/* A client: an entry to a watched VIP:port that is, or may be, stranded. */
struct tracked {
	struct ct_entry e;            /* as first seen (SUSPECT: as last read) */
	uint64_t seen, seq;           /* when first seen: clock, and event order */
	uint64_t retry_at, backoff;   /* a failed heal is tried again then */
	union ct_addr now;            /* gone_backend: where fresh flows go */
	uint16_t now_port;
	uint32_t gen, key, hnext, next, prev;
	uint8_t used, state, kind, dry, backend;
	uint8_t dumped;               /* first seen by a resync's dump, not an event */
};

/* One VIP:port: what the last new flows to it say about its rule. */
struct key {
	struct ct_target t;           /* a full prefix and a port */
	uint64_t last_dnat, last_stale, active;
	uint64_t dnat_floor;          /* the last DNAT'd new flow surely came after this seq */
	union ct_addr fresh_to;       /* the last fresh probe went there */
	uint16_t fresh_port;
	uint32_t hnext, lprev, lnext, head;   /* hash chain; LRU; its unproven clients */
	uint32_t pending, stuck[NSK];
	uint8_t used, dns, pinned, dnat_seen, fresh;
};

struct table {
	const struct opts *o;         /* the bounds; heal_node: whether stuck means "to heal" */
	struct counters *st;
	struct key *keys;
	uint32_t *kb, kcap, kbn, nkeys, kfree, lru, lru_tail;
	struct tracked *slot;
	uint32_t *cb, ccap, cbn, nflows, cfree, stuck_head;
	size_t to_heal;
	uint64_t now, seq;            /* the watch's clock and event order */
	uint32_t gen;                 /* the watch's last resync */
	int full, evict_said;         /* said once */
};

/* Empty tables (they grow at the first key). */
void table_init(struct table *tb, const struct opts *o, struct counters *st);
void table_free(struct table *tb);

int same_addr(uint8_t family, const union ct_addr *a, const union ct_addr *b);

/* The key of VIP:port a:port, or NIL. */
uint32_t key_find(const struct table *tb, uint8_t family, const union ct_addr *a, uint16_t port);
/* The VIP:port of t: known (now the most recently active), or made
 * known (NIL when none can be made). */
uint32_t key_of(struct table *tb, const struct ct_tuple *t);
/* A target: never evicted. */
void key_pin(struct table *tb, uint32_t ki);
void key_dnat_seen(struct table *tb, uint32_t ki);

/* The client whose flow is t, or NULL. */
struct tracked *lookup(const struct table *tb, const struct ct_tuple *t);
/* A new client of key ki in state (PENDING, SUSPECT or STUCK), dated
 * now, or NULL when the table is full even after an eviction. */
struct tracked *track_new(struct table *tb, const struct ct_entry *e, uint32_t ki, uint8_t state,
                          uint8_t kind);
/* Drops s; event: the line saying why (NULL: none). */
void forget(struct table *tb, struct tracked *s, const char *event);
/* s is proven stranded: counted stuck, reported once, queued to heal. */
void make_stuck(struct table *tb, struct tracked *s);

/* The line about client s (stuck_ns: how long it was stuck; 0: no such pair). */
void client_line(const struct table *tb, const char *level, const char *event,
                 const struct tracked *s, uint64_t stuck_ns);

#endif
