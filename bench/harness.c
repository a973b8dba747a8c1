/* bench/harness.c - the measuring tools bench/run.sh needs, in one
 * program (gcc, glibc; never part of the shipped binary).
 *
 *   harness flood DST FROM TO DPORT [RATE]
 *       Raw UDP socket: one datagram for each flow i = FROM..TO-1 to DST,
 *       source port 1024 + (i - FROM) % 64000, destination port
 *       DPORT + (i - FROM) / 64000. Every datagram is a new conntrack entry
 *       in this namespace; `conntrack -D --dport` removes a band again.
 *       With RATE, at most RATE datagrams a second (paced per batch), and
 *       the sender's own CPU (user sys, microseconds) on stderr.
 *
 *   harness rusage -o FILE [-n N] -- CMD...
 *       Runs CMD N times (one after the other, stdin/stdout as given) and
 *       appends per run: wall_us cpu_us user_us sys_us rc. CPU is the
 *       child's own (wait4), not ours and not `ip netns exec`'s.
 *
 *   harness cycles -o FILE -c CYCFILE -i IFACE -p DPORT -I MS [-n N] -- CMD...
 *       Runs CMD once, as rusage does (one line to FILE), and also reads
 *       CMD's CPU clock (clock_getcpuclockid: its exact sum_exec_runtime)
 *       in the middle of every interval of its grid, found from the first
 *       datagram to DPORT leaving IFACE, while it sleeps between ticks:
 *       each difference is exactly one cycle's CPU. Appends one line to
 *       CYCFILE: the CPU of every whole cycle, in ns. With -n N (CMD makes
 *       N cycles), at most N - 1 values: cycles 2 to N (the first is
 *       before the grid's first read); without it, a CMD slow to exit
 *       after its last cycle adds a value or two that are its exit.
 *
 *   harness orig -o FILE -n N -s NODE -d VIP [-i MS] [-c CONNTRACK]
 *       The original tester's cycle, N times: one DNS query over a fixed
 *       UDP socket to VIP:53, wait for the reply (1 s at most), then one
 *       `conntrack -D -p udp --src NODE --sport P --dst-nat`, P our port.
 *       Appends per cycle: cpu_us (ours + the conntrack child's) child_us
 *       wall_us answered.
 *
 *   harness stamp -i IFACE -p DPORT -n N [-l TEXT] [-t SECONDS] -- CMD...
 *       Starts CMD (stdout through a pipe) and prints, in CLOCK_REALTIME
 *       nanoseconds: "start T" taken in the child just before execve,
 *       "pkt T" for each of the first N UDP datagrams to DPORT that leave
 *       IFACE (the kernel's timestamp as the packet is handed to the
 *       device, AF_PACKET + SO_TIMESTAMPNS), and, with -l, "line T TEXT"
 *       for the first line of CMD's output containing TEXT (T: when we
 *       read it; the tester writes each line with one write(2)). Stops
 *       when it has all of that or after SECONDS (default 10), then
 *       SIGTERMs CMD and reaps it. Prints "exit RC" last.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what)
{
	fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fputs("usage: harness flood|rusage|cycles|orig|stamp ... (see bench/harness.c)\n", stderr);
	exit(2);
}

static uint64_t ns_of(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_us(struct timeval tv) { return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec; }

static FILE *open_out(const char *path)
{
	FILE *f = fopen(path, "a");
	if (!f)
		die(path);
	return f;
}

/* ---- flood -------------------------------------------------------- */

#define BATCH 512

static int flood(int argc, char **argv)
{
	if (argc != 5 && argc != 6)
		usage();
	double rate = argc == 6 ? atof(argv[5]) : 0;
	uint64_t t0 = ns_of(CLOCK_MONOTONIC);
	struct sockaddr_in dst = {.sin_family = AF_INET};
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1)
		usage();
	long from = atol(argv[2]), to = atol(argv[3]), base = atol(argv[4]);
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
	if (fd < 0)
		die("raw socket");
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0)
		die("connect");
	static struct udphdr h[BATCH];
	static struct iovec iov[BATCH];
	static struct mmsghdr m[BATCH];
	long sent = 0;
	for (long i = from; i < to;) {
		int n = 0;
		for (; n < BATCH && i < to; n++, i++) {
			h[n].source = htons((uint16_t)(1024 + (i - from) % 64000));
			h[n].dest = htons((uint16_t)(base + (i - from) / 64000));
			h[n].len = htons(sizeof h[n]);
			h[n].check = 0;               /* IPv4: no checksum */
			iov[n] = (struct iovec){&h[n], sizeof h[n]};
			m[n] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[n], .msg_iovlen = 1}};
		}
		for (int off = 0; off < n;) {
			int r = sendmmsg(fd, m + off, (unsigned)(n - off), 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == ENOBUFS || errno == EAGAIN)) {
				usleep(1000);
				continue;
			}
			if (r < 0)
				die("sendmmsg");
			off += r;
			sent += r;
		}
		/* Paced: batch k leaves no earlier than k * BATCH / RATE s in. */
		int64_t ahead = rate > 0 ? (int64_t)(sent / rate * 1e9) - (int64_t)(ns_of(CLOCK_MONOTONIC) - t0) : 0;
		if (ahead > 0)
			nanosleep(&(struct timespec){ahead / 1000000000, ahead % 1000000000}, NULL);
	}
	printf("%ld\n", sent);
	if (rate > 0) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		fprintf(stderr, "%llu %llu\n", (unsigned long long)tv_us(ru.ru_utime), (unsigned long long)tv_us(ru.ru_stime));
	}
	return 0;
}

/* ---- rusage ------------------------------------------------------- */

/* posix_spawn (vfork underneath, as Go's os/exec does); returns the pid. */
static pid_t spawn(char **cmd, posix_spawn_file_actions_t *fa)
{
	pid_t pid;
	int e = posix_spawnp(&pid, cmd[0], fa, NULL, cmd, environ);
	if (e) {
		errno = e;
		die(cmd[0]);
	}
	return pid;
}

/* Waits for pid (started at t0, CLOCK_MONOTONIC) and writes one line:
 * wall cpu user sys (microseconds) and its exit status. */
static void reap(FILE *f, pid_t pid, uint64_t t0)
{
	struct rusage ru;
	int st;
	if (wait4(pid, &st, 0, &ru) < 0)
		die("wait4");
	uint64_t wall = (ns_of(CLOCK_MONOTONIC) - t0) / 1000;
	uint64_t u = tv_us(ru.ru_utime), sy = tv_us(ru.ru_stime);
	fprintf(f, "%llu %llu %llu %llu %d\n", (unsigned long long)wall,
	        (unsigned long long)(u + sy), (unsigned long long)u, (unsigned long long)sy,
	        WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static int run_rusage(int argc, char **argv)
{
	const char *out = NULL;
	int n = 1, c;
	while ((c = getopt(argc, argv, "+o:n:")) != -1) {
		if (c == 'o') out = optarg;
		else if (c == 'n') n = atoi(optarg);
		else usage();
	}
	if (!out || optind >= argc)
		usage();
	FILE *f = open_out(out);
	for (int i = 0; i < n; i++) {
		uint64_t t0 = ns_of(CLOCK_MONOTONIC);
		reap(f, spawn(argv + optind, NULL), t0);
	}
	fclose(f);
	return 0;
}

/* ---- orig --------------------------------------------------------- */

/* kubernetes.default.svc.cluster.local. A, recursion desired. */
static size_t dns_query(uint8_t *b, uint16_t id)
{
	static const char *const labels[] = {"kubernetes", "default", "svc", "cluster", "local"};
	size_t n = 0;
	b[n++] = (uint8_t)(id >> 8); b[n++] = (uint8_t)id;
	b[n++] = 0x01; b[n++] = 0x00;             /* RD */
	b[n++] = 0; b[n++] = 1;                   /* QDCOUNT 1 */
	memset(b + n, 0, 6); n += 6;
	for (size_t i = 0; i < sizeof labels / sizeof *labels; i++) {
		size_t l = strlen(labels[i]);
		b[n++] = (uint8_t)l;
		memcpy(b + n, labels[i], l);
		n += l;
	}
	b[n++] = 0;
	b[n++] = 0; b[n++] = 1;                   /* A */
	b[n++] = 0; b[n++] = 1;                   /* IN */
	return n;
}

static int orig(int argc, char **argv)
{
	const char *out = NULL, *node = NULL, *vip = NULL, *ct = "conntrack";
	int n = 0, interval_ms = 10, c;
	while ((c = getopt(argc, argv, "o:n:s:d:i:c:")) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 's': node = optarg; break;
		case 'd': vip = optarg; break;
		case 'i': interval_ms = atoi(optarg); break;
		case 'c': ct = optarg; break;
		default: usage();
		}
	}
	if (!out || !node || !vip || n <= 0)
		usage();
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	if (inet_pton(AF_INET, vip, &sa.sin_addr) != 1)
		usage();
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("udp socket");
	struct sockaddr_in me;
	socklen_t len = sizeof me;
	if (getsockname(fd, (struct sockaddr *)&me, &len) < 0)
		die("getsockname");
	char port[8];
	snprintf(port, sizeof port, "%u", ntohs(me.sin_port));
	char *cmd[] = {(char *)ct, "-D", "-p", "udp", "--src", (char *)node, "--sport", port,
	               "--dst-nat", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	FILE *f = open_out(out);
	for (int i = 0; i < n; i++) {
		struct rusage a, b, ch;
		uint8_t q[512], r[512];
		int st, answered = 0;
		getrusage(RUSAGE_SELF, &a);
		uint64_t t0 = ns_of(CLOCK_MONOTONIC);
		size_t ql = dns_query(q, (uint16_t)(t0 >> 10));
		if (send(fd, q, ql, 0) < 0)
			die("send");
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 1000) == 1 && recv(fd, r, sizeof r, 0) > 2 && !memcmp(r, q, 2))
			answered = 1;
		pid_t pid = spawn(cmd, &fa);
		if (wait4(pid, &st, 0, &ch) < 0)
			die("wait4");
		getrusage(RUSAGE_SELF, &b);
		uint64_t wall = (ns_of(CLOCK_MONOTONIC) - t0) / 1000;
		uint64_t self = tv_us(b.ru_utime) + tv_us(b.ru_stime) - tv_us(a.ru_utime) - tv_us(a.ru_stime);
		uint64_t child = tv_us(ch.ru_utime) + tv_us(ch.ru_stime);
		fprintf(f, "%llu %llu %llu %d\n", (unsigned long long)(self + child),
		        (unsigned long long)child, (unsigned long long)wall, answered);
		fflush(f);
		usleep((useconds_t)interval_ms * 1000);
	}
	fclose(f);
	return 0;
}

/* ---- packets leaving an interface -------------------------------- */

/* An AF_PACKET socket on IFACE with kernel timestamps. ETH_P_ALL: only
 * "all protocols" taps see outgoing packets. */
static int tap_open(const char *iface)
{
	int ps = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (ps < 0)
		die("packet socket");
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
	                         .sll_ifindex = (int)if_nametoindex(iface)};
	if (!ll.sll_ifindex)
		die(iface);
	if (bind(ps, (struct sockaddr *)&ll, sizeof ll) < 0)
		die("bind packet socket");
	int one = 1, big = 8 << 20;
	if (setsockopt(ps, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0)
		die("SO_TIMESTAMPNS");
	setsockopt(ps, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
	return ps;
}

/* Reads what is queued on ps without blocking. Returns the kernel
 * timestamp (CLOCK_REALTIME ns) of the next outgoing IPv4 UDP datagram
 * to dport, 0 if none is queued now. */
static uint64_t tap_next(int ps, int dport)
{
	uint8_t pkt[2048];
	char cbuf[256];
	struct sockaddr_ll from;
	struct iovec iov = {pkt, sizeof pkt};
	for (;;) {
		struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
		                   .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
		ssize_t len = recvmsg(ps, &m, MSG_DONTWAIT);
		if (len < 0)
			return 0;
		struct iphdr *ip = (struct iphdr *)pkt;
		if (from.sll_pkttype != PACKET_OUTGOING || from.sll_protocol != htons(ETH_P_IP) ||
		    len < 20 || ip->version != 4 || ip->protocol != IPPROTO_UDP ||
		    len < (ssize_t)(ip->ihl * 4 + 8))
			continue;
		struct udphdr *u = (struct udphdr *)(pkt + ip->ihl * 4);
		if (ntohs(u->dest) != dport)
			continue;
		uint64_t ts = 1;               /* never 0: 0 means none */
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
				struct timespec t;
				memcpy(&t, CMSG_DATA(cm), sizeof t);
				ts = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
			}
		return ts;
	}
}

/* ---- cycles ------------------------------------------------------- */

static int cycles(int argc, char **argv)
{
	const char *out = NULL, *cyc = NULL, *iface = NULL;
	int dport = -1, ms = 0, n = 0, c;
	while ((c = getopt(argc, argv, "+o:c:i:p:I:n:")) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'c': cyc = optarg; break;
		case 'i': iface = optarg; break;
		case 'p': dport = atoi(optarg); break;
		case 'I': ms = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		default: usage();
		}
	}
	if (!out || !cyc || !iface || dport < 0 || ms <= 0 || optind >= argc)
		usage();
	int ps = tap_open(iface);
	FILE *f = open_out(out), *fc = open_out(cyc);
	uint64_t t0 = ns_of(CLOCK_MONOTONIC);
	pid_t pid = spawn(argv + optind, NULL);
	clockid_t cpu;
	if (clock_getcpuclockid(pid, &cpu))
		die("clock_getcpuclockid");
	/* The grid: from the first query on the wire (waiting at most 5 s). */
	uint64_t first = 0;
	for (int i = 0; i < 500 && !first; i++) {
		struct pollfd p = {.fd = ps, .events = POLLIN};
		if (poll(&p, 1, 10) > 0)
			first = tap_next(ps, dport);
	}
	close(ps);
	siginfo_t si;
	uint64_t prev = 0;
	int k = 0;
	while (first && (n <= 0 || k < n)) {
		uint64_t at = first + (uint64_t)ms * 500000u + (uint64_t)k++ * (uint64_t)ms * 1000000u;
		struct timespec ts = {(time_t)(at / 1000000000u), (long)(at % 1000000000u)};
		while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		si.si_pid = 0;                  /* exited? look, but leave it unreaped */
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid)
			break;
		struct timespec now;
		if (clock_gettime(cpu, &now))
			break;
		uint64_t v = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
		if (prev)
			fprintf(fc, "%s%llu", k > 2 ? " " : "", (unsigned long long)(v - prev));
		prev = v;
	}
	fputc('\n', fc);
	fclose(fc);
	reap(f, pid, t0);
	fclose(f);
	return first ? 0 : 1;
}

/* ---- stamp -------------------------------------------------------- */

static int stamp(int argc, char **argv)
{
	const char *iface = NULL, *text = NULL;
	int dport = -1, n = 0, secs = 10, c;
	while ((c = getopt(argc, argv, "+i:p:n:l:t:")) != -1) {
		switch (c) {
		case 'i': iface = optarg; break;
		case 'p': dport = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 'l': text = optarg; break;
		case 't': secs = atoi(optarg); break;
		default: usage();
		}
	}
	if (!iface || dport < 0 || optind >= argc)
		usage();
	char **cmd = argv + optind;

	int ps = tap_open(iface);

	int out[2], tp[2];
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(tp, O_CLOEXEC) < 0)
		die("pipe");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(out[1], 1);
		uint64_t t0 = ns_of(CLOCK_REALTIME);
		if (write(tp[1], &t0, sizeof t0) != sizeof t0)
			_exit(127);
		execvp(cmd[0], cmd);
		_exit(127);
	}
	close(out[1]);
	close(tp[1]);
	uint64_t t0;
	if (read(tp[0], &t0, sizeof t0) != sizeof t0)
		die("start time");
	printf("start %llu\n", (unsigned long long)t0);

	uint64_t end = ns_of(CLOCK_MONOTONIC) + (uint64_t)secs * 1000000000u;
	int got = 0, seen = text == NULL, out_open = 1;
	char lbuf[8192];
	size_t lfill = 0;
	while ((got < n || !seen) && ns_of(CLOCK_MONOTONIC) < end) {
		struct pollfd p[2] = {{.fd = ps, .events = POLLIN}, {.fd = out_open ? out[0] : -1, .events = POLLIN}};
		if (poll(p, 2, 100) < 0 && errno != EINTR)
			die("poll");
		if (p[0].revents & POLLIN) {
			uint64_t ts;
			while ((ts = tap_next(ps, dport)))      /* drain: never spin */
				if (got < n) {
					printf("pkt %llu\n", (unsigned long long)ts);
					got++;
				}
		}
		if (out_open && (p[1].revents & (POLLIN | POLLHUP))) {
			ssize_t r = read(out[0], lbuf + lfill, sizeof lbuf - 1 - lfill);
			uint64_t now = ns_of(CLOCK_REALTIME);
			if (r <= 0) {
				out_open = 0;
				continue;
			}
			lfill += (size_t)r;
			lbuf[lfill] = 0;
			char *nl;
			while ((nl = memchr(lbuf, '\n', lfill))) {
				*nl = 0;
				if (!seen && strstr(lbuf, text)) {
					printf("line %llu %s\n", (unsigned long long)now, lbuf);
					seen = 1;
				}
				size_t used = (size_t)(nl + 1 - lbuf);
				memmove(lbuf, nl + 1, lfill - used);
				lfill -= used;
			}
			if (lfill == sizeof lbuf - 1)
				lfill = 0;              /* a line too long to matter */
		}
	}
	kill(pid, SIGTERM);
	/* Keep reading its output so a final write cannot block it. */
	int st;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		char junk[4096];
		struct pollfd p = {.fd = out_open ? out[0] : -1, .events = POLLIN};
		poll(&p, 1, 50);
		if (out_open && (p.revents & (POLLIN | POLLHUP)) && read(out[0], junk, sizeof junk) <= 0)
			out_open = 0;
	}
	printf("exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return got < n || !seen;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "flood")) return flood(argc - 1, argv + 1);
	if (!strcmp(argv[1], "rusage")) return run_rusage(argc - 1, argv + 1);
	if (!strcmp(argv[1], "cycles")) return cycles(argc - 1, argv + 1);
	if (!strcmp(argv[1], "orig")) return orig(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stamp")) return stamp(argc - 1, argv + 1);
	usage();
}
