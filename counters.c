/* counters.c - the counters model (counters.h): names, bounds, and the
 * one way a histogram is added to. */
#include "counters.h"

#include <string.h>

const char *const cause_names[NCAUSES] = {
	"none", "blackhole", "no_reply", "no_entry", "unknown", "nat_missing", "refused",
	"send_error", "recv_error", "gone_backend",
};

const uint32_t lat_bounds[NLAT] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000,
};

const uint32_t win_bounds[NWIN] = {
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
	60000000, 120000000, 300000000,
};

void hist_add(struct hist *h, const uint32_t *bounds, size_t n, uint64_t ns)
{
	size_t i = 0;
	while (i < n && ns > (uint64_t)bounds[i] * 1000)
		i++;
	h->count[i]++;
	h->sum_ns += ns;
}

#define F(stat, metric, help, field) {stat, metric, help, offsetof(struct counters, field)}
const struct counter_field counter_fields[] = {
	F("sent", "queries_sent_total", "DNS queries sent.", sent),
	F("answered", "queries_answered_total", "Queries answered by a matching reply.", answered),
	F("timeouts", NULL, NULL, timeouts),
	F("refused", "refused_total", "Queries refused (ICMP port unreachable).", refused),
	F("send_errors", "send_errors_total", "Queries that could not be sent.", send_errors),
	F("recv_errors", "recv_errors_total", "Queries ended by another ICMP error.", recv_errors),
	F("blackholes", NULL, NULL, blackholes),                  /* by kind: render_counters */
	F("blackholes_gone_backend", NULL, NULL, blackholes_gone),
	F("heals", "heals_total", "Blackholed own entries deleted by --heal.", heals),
	F("deleted", "conntrack_deletions_total", "Own DNAT'd conntrack entries deleted.", deleted),
	F("probes", "probes_total", "Probes sent: is the VIP's DNAT rule in place now?", probes),
	F("windows", "restart_windows_total", "Restart windows seen: a new flow to the VIP not DNAT'd.", windows),
	F("unexpected", "unexpected_replies_total", "Datagrams ignored: wrong ID, question or format.", unexpected),
	F("skipped_ticks", NULL, NULL, skipped_ticks),
	F("node_events", "node_events_total", "Conntrack events read.", node_events),
	F("node_lost", "node_events_lost_total", "Event socket overflows (ENOBUFS).", node_lost),
	F("node_resyncs", "node_resyncs_total", "Conntrack table dumps.", node_resyncs),
	F("node_blackholed", "node_clients_blackholed_total", "Clients proven stuck.", node_blackholed),
	F("node_healed", "node_clients_healed_total", "Stuck clients healed.", node_healed),
	F("node_cleared", "node_clients_cleared_total", "Stuck clients cleared by themselves.", node_cleared),
};
#undef F
const size_t ncounter_fields = sizeof counter_fields / sizeof *counter_fields;

uint64_t counter_value(const struct counters *c, const struct counter_field *f)
{
	uint64_t v;
	memcpy(&v, (const char *)c + f->off, sizeof v);
	return v;
}
