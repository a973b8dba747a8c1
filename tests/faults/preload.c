/* tests/faults/preload.c - LD_PRELOAD fault injector for the glibc build
 * of the tester (build/host/dns-blackhole-tester-debug). The static musl
 * binary cannot be preloaded; the debug build is the same source.
 *
 * Everything is driven by environment variables; unset = no fault:
 *
 *   FAULT_NL_RCVBUF=BYTES     shrink every netlink socket's SO_RCVBUF to
 *                             BYTES right after socket(): the kernel then
 *                             really overruns it (ENOBUFS on our recv).
 *   FAULT_NL_RCVBUF_REQS=N    ... but only for the first N netlink
 *                             requests; then the old size is put back.
 *   FAULT_NL_DROPCAP_AFTER=N  after N netlink requests, drop CAP_NET_ADMIN
 *                             from the effective set: the kernel answers
 *                             the next one with EPERM (a real refusal).
 *   FAULT_NL_DUMP_ENOBUFS_AT=N  the Nth recvmsg() on the first netlink
 *                             socket that sent a dump request (NLM_F_DUMP)
 *                             fails with ENOBUFS once: a dump cut short,
 *                             whatever the program read on other sockets.
 *   FAULT_NL_ENOBUFS_AT=N     the Nth recvmsg() on a netlink socket fails
 *                             with ENOBUFS without reading anything, as
 *                             when the kernel sets sk_err (synthetic).
 *   FAULT_RT_JUMPS=S:OFF,...  S seconds (monotonic) after start, make
 *                             CLOCK_REALTIME read OFF seconds off the
 *                             real clock (OFF may be negative): a clock
 *                             step as NTP or an operator would make it,
 *                             seen by this process only.
 *   FAULT_NL_ERRNO_AS=E       every error the kernel answers on the netlink
 *                             socket (NLMSG_ERROR with an errno, not an
 *                             ACK) reads as errno E (a number: 3 ESRCH,
 *                             71 EPROTO): the kernel's real answer, with
 *                             another code.
 *   FAULT_PPOLL_FAIL_FROM=N   from the Nth ppoll() call on, every call
 *                             fails with EINVAL without sleeping, as a
 *                             ppoll the loop cannot recover from would.
 *   FAULT_NL_DELETE_FAIL=N    the first N conntrack DELETE requests, on any
 *                             netlink socket, fail at sendto() with ENOMEM
 *                             without reaching the kernel: a heal that
 *                             fails, then works (synthetic).
 *   FAULT_PPOLL_READABLE=1    every ppoll() whose first fd is a socket
 *                             polled for input returns at once with that
 *                             fd readable (POLLIN), as under a reply
 *                             flood that never lets the socket go empty
 *                             (the tester's query socket is p[0] while it
 *                             waits for a reply; its recv finds nothing).
 *   FAULT_REPORT=FILE         at exit, write what happened: requests,
 *                             injected faults, clock_gettime calls by
 *                             clock id, and the smallest and largest
 *                             SO_RCVBUF in force (getsockopt, read back at
 *                             each netlink request) - what the kernel
 *                             made of FAULT_NL_RCVBUF, not what we asked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <errno.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int nl_fd = -1, saved_rcvbuf;
static long nl_reqs, nl_recvs, injected_enobufs, cap_dropped, rcvbuf_restored;
static long rcvbuf_min = -1, rcvbuf_max = -1;
static long clock_calls[16], other_clock_calls;
static long ppoll_calls, ppoll_failed, ppoll_fail_from = -1, ppoll_readable = -1, ppoll_forced;
static long errno_as = -1, errors_rewritten;
static long delete_fail = -1, deletes_failed;
static long rcvbuf_want = -1, rcvbuf_reqs = -1, dropcap_after = -1, enobufs_at = -1;
static long dump_enobufs_at = -1, dump_recvs;
static int dump_fd = -1;
static struct { double at; long off; } jumps[8];
static int njumps;
static int64_t t_start_ns;
static int report_fd = -1;

static long envl(const char *k)
{
	const char *v = getenv(k);
	return v && *v ? strtol(v, NULL, 10) : -1;
}

static int (*real_clock_gettime)(clockid_t, struct timespec *);

static int64_t mono_ns(void)
{
	struct timespec ts;
	real_clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

__attribute__((constructor)) static void init(void)
{
	real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
	rcvbuf_want = envl("FAULT_NL_RCVBUF");
	rcvbuf_reqs = envl("FAULT_NL_RCVBUF_REQS");
	dropcap_after = envl("FAULT_NL_DROPCAP_AFTER");
	enobufs_at = envl("FAULT_NL_ENOBUFS_AT");
	dump_enobufs_at = envl("FAULT_NL_DUMP_ENOBUFS_AT");
	ppoll_fail_from = envl("FAULT_PPOLL_FAIL_FROM");
	ppoll_readable = envl("FAULT_PPOLL_READABLE");
	errno_as = envl("FAULT_NL_ERRNO_AS");
	delete_fail = envl("FAULT_NL_DELETE_FAIL");
	const char *j = getenv("FAULT_RT_JUMPS");
	for (; j && *j && njumps < 8; ) {
		char *end;
		jumps[njumps].at = strtod(j, &end);
		if (*end != ':')
			break;
		jumps[njumps].off = strtol(end + 1, &end, 10);
		njumps++;
		j = *end == ',' ? end + 1 : end;
	}
	t_start_ns = mono_ns();
	/* Opened now, written at exit: a confined tester (confine.c) may
	 * open nothing once set up. Above fd 9: never one of stdio's. */
	const char *f = getenv("FAULT_REPORT");
	int fd = f ? open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
	if (fd >= 0) {
		report_fd = fcntl(fd, F_DUPFD_CLOEXEC, 10);
		close(fd);
	}
}

__attribute__((destructor)) static void report(void)
{
	/* snprintf and one write(2): glibc's dprintf would lseek first, a
	 * call a confined tester may not make. */
	char b[1024];
	if (report_fd < 0)
		return;
	int n = snprintf(b, sizeof b,
	        "nl_requests=%ld nl_recvs=%ld injected_enobufs=%ld cap_dropped=%ld rcvbuf_restored=%ld\n"
	        "clock_realtime=%ld clock_monotonic=%ld clock_other=%ld\n"
	        "ppoll_calls=%ld ppoll_failed=%ld ppoll_forced=%ld errors_rewritten=%ld\n"
	        "nl_rcvbuf_min=%ld nl_rcvbuf_max=%ld\n"
	        "deletes_failed=%ld\n",
	        nl_reqs, nl_recvs, injected_enobufs, cap_dropped, rcvbuf_restored,
	        clock_calls[CLOCK_REALTIME], clock_calls[CLOCK_MONOTONIC], other_clock_calls,
	        ppoll_calls, ppoll_failed, ppoll_forced, errors_rewritten, rcvbuf_min, rcvbuf_max,
	        deletes_failed);
	if (n > 0 && write(report_fd, b, (size_t)n < sizeof b ? (size_t)n : sizeof b - 1) < 0)
		n = -1;                       /* nothing more to do about it */
	close(report_fd);
}

int socket(int domain, int type, int proto)
{
	static int (*real)(int, int, int);
	if (!real)
		real = dlsym(RTLD_NEXT, "socket");
	int fd = real(domain, type, proto);
	if (fd >= 0 && domain == AF_NETLINK) {
		nl_fd = fd;
		if (rcvbuf_want >= 0) {
			socklen_t l = sizeof saved_rcvbuf;
			int v = (int)rcvbuf_want;
			getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &saved_rcvbuf, &l);
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
		}
	}
	return fd;
}

static void drop_cap_net_admin(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return;
	d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
	if (syscall(SYS_capset, &h, d) == 0)
		cap_dropped = 1;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
               const struct sockaddr *to, socklen_t tolen)
{
	static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	if (!real)
		real = dlsym(RTLD_NEXT, "sendto");
	/* the first socket that asks for a dump */
	if (dump_enobufs_at > 0 && dump_fd < 0 && len >= sizeof(struct nlmsghdr) &&
	    (((const struct nlmsghdr *)buf)->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP)
		dump_fd = fd;
	/* ctnetlink's DELETE: subsystem 1 (NFNL_SUBSYS_CTNETLINK), message 2 */
	if (delete_fail > deletes_failed && len >= sizeof(struct nlmsghdr) &&
	    ((const struct nlmsghdr *)buf)->nlmsg_type == ((1 << 8) | 2)) {
		deletes_failed++;
		errno = ENOMEM;
		return -1;
	}
	if (fd == nl_fd) {
		if (dropcap_after >= 0 && nl_reqs == dropcap_after && !cap_dropped)
			drop_cap_net_admin();
		if (rcvbuf_want >= 0 && rcvbuf_reqs >= 0 && nl_reqs == rcvbuf_reqs && !rcvbuf_restored) {
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &saved_rcvbuf, sizeof saved_rcvbuf);
			rcvbuf_restored = 1;
		}
		/* the size in force for this request, as the kernel keeps it */
		int cur;
		socklen_t cl = sizeof cur;
		if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cur, &cl) == 0) {
			if (rcvbuf_min < 0 || cur < rcvbuf_min)
				rcvbuf_min = cur;
			if (cur > rcvbuf_max)
				rcvbuf_max = cur;
		}
		nl_reqs++;
	}
	return real(fd, buf, len, flags, to, tolen);
}

/* Every NLMSG_ERROR carrying an error (not an ACK) in buf gets errno_as. */
static void rewrite_errors(void *buf, size_t len)
{
	char *p = buf;
	while (len >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr *h = (struct nlmsghdr *)p;
		if (h->nlmsg_len < sizeof *h || h->nlmsg_len > len)
			return;
		if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_len >= sizeof *h + sizeof(struct nlmsgerr)) {
			struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error < 0) {
				e->error = -(int)errno_as;
				errors_rewritten++;
			}
		}
		size_t step = NLMSG_ALIGN(h->nlmsg_len);
		if (step > len)
			return;
		p += step;
		len -= step;
	}
}

/* libmnl's mnl_socket_recvfrom() reads with recvmsg(). */
ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, struct msghdr *, int);
	if (!real)
		real = dlsym(RTLD_NEXT, "recvmsg");
	if (fd == dump_fd && ++dump_recvs == dump_enobufs_at) {
		injected_enobufs++;
		errno = ENOBUFS;
		return -1;
	}
	if (fd == nl_fd && ++nl_recvs == enobufs_at) {
		injected_enobufs++;
		errno = ENOBUFS;
		return -1;
	}
	ssize_t n = real(fd, msg, flags);
	if (fd == nl_fd && n > 0 && errno_as > 0)
		rewrite_errors(msg->msg_iov[0].iov_base, (size_t)n);
	return n;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	if (!real_clock_gettime)
		real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
	if (id >= 0 && id < 16)
		clock_calls[id]++;
	else
		other_clock_calls++;
	int r = real_clock_gettime(id, ts);
	if (r == 0 && id == CLOCK_REALTIME && njumps) {
		double el = (double)(mono_ns() - t_start_ns) / 1e9;
		long off = 0;
		for (int i = 0; i < njumps; i++)
			if (el >= jumps[i].at)
				off = jumps[i].off;
		ts->tv_sec += off;
	}
	return r;
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	static int (*real)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	if (!real)
		real = dlsym(RTLD_NEXT, "ppoll");
	if (ppoll_fail_from > 0 && ++ppoll_calls >= ppoll_fail_from) {
		ppoll_failed++;
		errno = EINVAL;
		return -1;
	}
	if (ppoll_readable > 0 && n && fds[0].fd >= 0 && (fds[0].events & POLLIN)) {
		static const struct timespec now;
		int r = real(fds, n, &now, mask);
		if (r >= 0 && !(fds[0].revents & POLLIN)) {
			fds[0].revents |= POLLIN;
			r += fds[0].revents == POLLIN;
			ppoll_forced++;
		}
		return r;
	}
	return real(fds, n, ts, mask);
}
