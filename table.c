/* table.c - the node watch's tables: keys by VIP:port, clients by flow,
 * their lists, the LRU of keys, growth and eviction (see table.h). */
#include "table.h"
#include "counters.h"
#include "log.h"
#include "verdict.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_FIRST 64                  /* tables start this small, then double */
#define CLIENTS_FIRST 256

/* ---- small helpers ----------------------------------------------------- */

static uint32_t hash_bytes(const void *p, size_t n, uint32_t h)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static uint32_t tuple_hash(const struct ct_tuple *t)
{
	uint32_t h = hash_bytes(&t->family, 1, 2166136261u);
	h = hash_bytes(t->src.b, 16, h);
	h = hash_bytes(t->dst.b, 16, h);
	h = hash_bytes(&t->sport, 2, h);
	return hash_bytes(&t->dport, 2, h);
}

static uint32_t vip_hash(uint8_t family, const union ct_addr *a, uint16_t port)
{
	return hash_bytes(&port, 2, hash_bytes(a->b, 16, hash_bytes(&family, 1, 2166136261u)));
}

int same_addr(uint8_t family, const union ct_addr *a, const union ct_addr *b)
{
	return !memcmp(a->b, b->b, family == AF_INET6 ? 16 : 4);
}

/* IP:PORT, as a VIP:port is written. */
static void addr_port(uint8_t family, const union ct_addr *a, uint16_t port, char *buf, size_t cap)
{
	struct ct_target t = {family, (uint8_t)(family == AF_INET6 ? 128 : 32), port, *a};
	ct_target_format(&t, buf, cap);
}

void client_line(const struct table *tb, const char *level, const char *event,
                 const struct tracked *s, uint64_t stuck_ns)
{
	char vip[INET6_ADDRSTRLEN + 8], a[INET6_ADDRSTRLEN], entry[512];
	struct line l;
	ct_target_format(&tb->keys[s->key].t, vip, sizeof vip);
	log_begin(&l, level, event);
	log_kv(&l, "kind", strand_names[s->kind]);
	log_kv(&l, "vip", vip);
	log_kv(&l, "client", ct_ntop(s->e.orig.family, s->e.orig.src.b, a, sizeof a));
	log_kvu(&l, "sport", s->e.orig.sport);
	if (s->kind == K_GONE_BACKEND) {
		addr_port(s->e.orig.family, &s->e.reply.src, s->e.reply.sport, vip, sizeof vip);
		log_kv(&l, "backend", vip);
		addr_port(s->e.orig.family, &s->now, s->now_port, vip, sizeof vip);
		log_kv(&l, "now", vip);
	}
	log_kvu(&l, "id", s->e.id);
	if (stuck_ns)
		log_kvu(&l, "stuck_ms", stuck_ns / NS_PER_MS);
	ct_format(&s->e, entry, sizeof entry);
	log_kv(&l, "entry", entry);
	log_end(&l);
}

/* ---- intrusive lists of indices ----------------------------------------- */

static void list_add(struct tracked *sl, uint32_t *head, uint32_t i)
{
	sl[i].prev = NIL;
	sl[i].next = *head;
	if (*head != NIL)
		sl[*head].prev = i;
	*head = i;
}

static void list_del(struct tracked *sl, uint32_t *head, uint32_t i)
{
	if (sl[i].prev != NIL)
		sl[sl[i].prev].next = sl[i].next;
	else
		*head = sl[i].next;
	if (sl[i].next != NIL)
		sl[sl[i].next].prev = sl[i].prev;
}

/* The LRU list of keys that may be evicted (targets never are): the
 * least recently active at the head. */
static void lru_del(struct table *tb, uint32_t i)
{
	struct key *k = &tb->keys[i];
	if (k->pinned)
		return;
	if (k->lprev != NIL)
		tb->keys[k->lprev].lnext = k->lnext;
	else
		tb->lru = k->lnext;
	if (k->lnext != NIL)
		tb->keys[k->lnext].lprev = k->lprev;
	else
		tb->lru_tail = k->lprev;
}

static void lru_add(struct table *tb, uint32_t i)
{
	struct key *k = &tb->keys[i];
	if (k->pinned)
		return;
	k->lnext = NIL;
	k->lprev = tb->lru_tail;
	if (tb->lru_tail != NIL)
		tb->keys[tb->lru_tail].lnext = i;
	else
		tb->lru = i;
	tb->lru_tail = i;
}

/* ---- the tables: hashed, grown on demand up to their bounds ------------ */

void table_init(struct table *tb, const struct opts *o, struct counters *st)
{
	tb->o = o;
	tb->st = st;
	tb->kfree = tb->cfree = tb->stuck_head = NIL;
	tb->lru = tb->lru_tail = NIL;
}

void table_free(struct table *tb)
{
	free(tb->slot);
	free(tb->cb);
	free(tb->keys);
	free(tb->kb);
}

/* Doubles a table and its buckets (a power of two); the new slots go to
 * the free list. 0, or -1 at the bound or out of memory. */
static int grow(void **tab, size_t size, uint32_t *cap, uint32_t **buck, uint32_t *bn,
                uint32_t *freel, uint64_t max, size_t next_off)
{
	uint32_t n = *cap ? *cap * 2 : (size == sizeof(struct key) ? KEYS_FIRST : CLIENTS_FIRST);
	if (*cap >= max)
		return -1;
	if (n > max)
		n = (uint32_t)max;
	void *t = realloc(*tab, (size_t)n * size);
	if (!t)
		return -1;
	uint32_t bnew = 1;
	while (bnew < n)
		bnew *= 2;
	uint32_t *b = bnew > *bn ? realloc(*buck, bnew * sizeof *b) : *buck;
	if (!b)
		return *tab = t, -1;
	memset((char *)t + (size_t)*cap * size, 0, (size_t)(n - *cap) * size);
	for (uint32_t i = n; i-- > *cap;) {
		memcpy((char *)t + (size_t)i * size + next_off, freel, sizeof *freel);
		*freel = i;
	}
	*tab = t;
	*buck = b;
	*cap = n;
	*bn = bnew > *bn ? bnew : *bn;
	return 0;
}

static void rehash_clients(struct table *tb)
{
	for (uint32_t i = 0; i < tb->cbn; i++)
		tb->cb[i] = NIL;
	for (uint32_t i = 0; i < tb->ccap; i++)
		if (tb->slot[i].used) {
			uint32_t h = tuple_hash(&tb->slot[i].e.orig) & (tb->cbn - 1);
			tb->slot[i].hnext = tb->cb[h];
			tb->cb[h] = i;
		}
}

static void rehash_keys(struct table *tb)
{
	for (uint32_t i = 0; i < tb->kbn; i++)
		tb->kb[i] = NIL;
	for (uint32_t i = 0; i < tb->kcap; i++)
		if (tb->keys[i].used) {
			struct key *k = &tb->keys[i];
			uint32_t h = vip_hash(k->t.family, &k->t.addr, k->t.port) & (tb->kbn - 1);
			k->hnext = tb->kb[h];
			tb->kb[h] = i;
		}
}

struct tracked *lookup(const struct table *tb, const struct ct_tuple *t)
{
	if (!tb->cbn)
		return NULL;
	for (uint32_t i = tb->cb[tuple_hash(t) & (tb->cbn - 1)]; i != NIL; i = tb->slot[i].hnext)
		if (ct_tuple_equal(&tb->slot[i].e.orig, t))
			return &tb->slot[i];
	return NULL;
}

uint32_t key_find(const struct table *tb, uint8_t family, const union ct_addr *a, uint16_t port)
{
	if (!tb->kbn)
		return NIL;
	for (uint32_t i = tb->kb[vip_hash(family, a, port) & (tb->kbn - 1)]; i != NIL; i = tb->keys[i].hnext) {
		const struct key *k = &tb->keys[i];
		if (k->t.family == family && k->t.port == port && same_addr(family, &k->t.addr, a))
			return i;
	}
	return NIL;
}

static void unhash_client(struct table *tb, uint32_t i)
{
	uint32_t *p = &tb->cb[tuple_hash(&tb->slot[i].e.orig) & (tb->cbn - 1)];
	while (*p != i)
		p = &tb->slot[*p].hnext;
	*p = tb->slot[i].hnext;
}

/* A stuck client that went away by itself is client_cleared. */
void forget(struct table *tb, struct tracked *s, const char *event)
{
	uint32_t i = (uint32_t)(s - tb->slot);
	struct key *k = &tb->keys[s->key];
	if (s->state == F_STUCK) {
		k->stuck[s->kind == K_GONE_BACKEND]--;
		list_del(tb->slot, &tb->stuck_head, i);
		if (tb->o->heal_node && !s->dry)
			tb->to_heal--;
		if (event) {
			tb->st->node_cleared++;
			tb->st->node_cleared_by[s->kind]++;
			client_line(tb, "info", event, s, tb->now - s->seen);
		}
	} else {
		list_del(tb->slot, &k->head, i);
		k->pending -= s->state == F_PENDING;
	}
	unhash_client(tb, i);
	s->used = 0;
	s->hnext = tb->cfree;
	tb->cfree = i;
	tb->nflows--;
}

/* ---- keys: made on demand; at the bound, one goes ---------------------- */

/* Evicts the least recently active key that may go: one never seen
 * DNAT'd first (nothing proves a Service there), else one seen DNAT'd;
 * never a target, never one with a client under heal. Its unproven
 * clients go with it. For room in the client table (with_clients), only
 * a key that holds clients helps. 0, or -1 when none may go. */
static int evict_key(struct table *tb, uint32_t except, int with_clients)
{
	uint32_t i, seen = NIL;
	int n = 0;
	for (i = tb->lru; i != NIL && n < 1024; i = tb->keys[i].lnext, n++) {
		const struct key *c = &tb->keys[i];
		if (i == except || c->stuck[0] + c->stuck[1] || (with_clients && c->head == NIL))
			continue;             /* under heal, or no help */
		if (!c->dnat_seen)
			break;                /* nothing proves a Service there: first to go */
		seen = seen == NIL ? i : seen;
	}
	if (i == NIL || n == 1024)
		i = seen;
	if (i == NIL)
		return -1;
	struct key *k = &tb->keys[i];
	while (k->head != NIL)
		forget(tb, &tb->slot[k->head], NULL);
	lru_del(tb, i);
	uint32_t *p = &tb->kb[vip_hash(k->t.family, &k->t.addr, k->t.port) & (tb->kbn - 1)];
	while (*p != i)
		p = &tb->keys[*p].hnext;
	*p = k->hnext;
	k->used = 0;
	k->hnext = tb->kfree;
	tb->kfree = i;
	tb->nkeys--;
	tb->st->node_keys_evicted++;
	if (!tb->evict_said)
		log_note("warn", "node_keys_evicted", "effect", "table full: --node-max-keys");
	tb->evict_said = 1;
	return 0;
}

uint32_t key_of(struct table *tb, const struct ct_tuple *t)
{
	uint32_t i = key_find(tb, t->family, &t->dst, t->dport);
	if (i != NIL) {
		tb->keys[i].active = tb->seq;
		lru_del(tb, i);               /* most recently active: to the tail */
		lru_add(tb, i);
		return i;
	}
	if (tb->kfree == NIL) {
		if (grow((void **)&tb->keys, sizeof *tb->keys, &tb->kcap, &tb->kb, &tb->kbn, &tb->kfree,
		         tb->o->max_keys, offsetof(struct key, hnext)) == 0)
			rehash_keys(tb);
		else if (evict_key(tb, NIL, 0) < 0)
			return NIL;
	}
	i = tb->kfree;
	struct key *k = &tb->keys[i];
	tb->kfree = k->hnext;
	memset(k, 0, sizeof *k);
	k->used = 1;
	k->head = NIL;
	k->active = tb->seq;
	k->t = (struct ct_target){t->family, (uint8_t)(t->family == AF_INET6 ? 128 : 32), t->dport, t->dst};
	uint32_t h = vip_hash(t->family, &t->dst, t->dport) & (tb->kbn - 1);
	k->hnext = tb->kb[h];
	tb->kb[h] = i;
	tb->nkeys++;
	lru_add(tb, i);
	return i;
}

void key_pin(struct table *tb, uint32_t ki)
{
	lru_del(tb, ki);
	tb->keys[ki].pinned = 1;
}

/* A key seen DNAT'd: a Service; evicted only after those never seen so. */
void key_dnat_seen(struct table *tb, uint32_t ki)
{
	tb->keys[ki].dnat_seen = 1;
}

struct tracked *track_new(struct table *tb, const struct ct_entry *e, uint32_t ki, uint8_t state,
                          uint8_t kind)
{
	if (tb->cfree == NIL) {
		if (grow((void **)&tb->slot, sizeof *tb->slot, &tb->ccap, &tb->cb, &tb->cbn, &tb->cfree,
		         tb->o->max_clients, offsetof(struct tracked, hnext)) == 0)
			rehash_clients(tb);
		for (int n = 0; tb->cfree == NIL && n < 8 && evict_key(tb, ki, 1) == 0; n++)
			;
		if (tb->cfree == NIL) {
			if (!tb->full)        /* once */
				log_note("warn", "node_table_full", "effect", "table full: --node-max-clients");
			tb->full = 1;
			return NULL;
		}
	}
	uint32_t i = tb->cfree;
	struct tracked *s = &tb->slot[i];
	tb->cfree = s->hnext;
	*s = (struct tracked){.e = *e, .seen = tb->now, .seq = tb->seq, .gen = tb->gen, .key = ki,
	                      .used = 1, .state = state, .kind = kind};
	uint32_t h = tuple_hash(&e->orig) & (tb->cbn - 1);
	s->hnext = tb->cb[h];
	tb->cb[h] = i;
	tb->nflows++;
	if (state == F_STUCK) {
		list_add(tb->slot, &tb->stuck_head, i);
		tb->keys[ki].stuck[kind == K_GONE_BACKEND]++;
	} else {
		list_add(tb->slot, &tb->keys[ki].head, i);
		tb->keys[ki].pending += state == F_PENDING;
	}
	return s;
}

void make_stuck(struct table *tb, struct tracked *s)
{
	uint32_t i = (uint32_t)(s - tb->slot);
	struct key *k = &tb->keys[s->key];
	if (s->state == F_STUCK)
		return;
	list_del(tb->slot, &k->head, i);
	k->pending -= s->state == F_PENDING;
	s->state = F_STUCK;
	list_add(tb->slot, &tb->stuck_head, i);
	k->stuck[s->kind == K_GONE_BACKEND]++;
	tb->st->node_blackholed++;
	tb->st->node_blackholed_by[s->kind]++;
	tb->to_heal += tb->o->heal_node;
	client_line(tb, "error", "client_blackholed", s, 0);
}
