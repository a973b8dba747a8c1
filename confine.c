/* confine.c - no_new_privs, CAP_NET_ADMIN alone, and a seccomp allow-list
 * (confine.h). Plain syscalls and kernel UAPI headers: no libcap, no
 * libseccomp. The syscall numbers are the C library's (musl's per-arch
 * bits/syscall.h, or glibc's for the host builds), so the same list is
 * right on x86_64 and aarch64; a filter is only valid for the arch it was
 * written for, and the first thing it checks is that arch. */
#define _GNU_SOURCE
#include "confine.h"
#include "log.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH_NR AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH_NR AUDIT_ARCH_AARCH64
#else
#error "confine.c: a seccomp allow-list exists for x86_64 and aarch64 only"
#endif

int confine_disabled;
static const char *state = "none";

/* What the loop calls once set up, the tester's and scan's, with what
 * other modules add while running: fresh UDP probe sockets, fresh
 * NETLINK_NETFILTER sockets per dump or request (SO_ATTACH_FILTER,
 * SO_RCVBUFFORCE), a TCP GET to kube-proxy's metrics, the metrics
 * server's clients, and malloc/realloc growing tables. No open, exec,
 * fork, ptrace, mount, kill, setuid, ioctl, sigaction. */
static const unsigned allowed[] = {
	__NR_read, __NR_readv, __NR_write, __NR_writev, __NR_close, __NR_ppoll,
	__NR_recvfrom, __NR_recvmsg, __NR_recvmmsg, __NR_sendto, __NR_sendmsg, __NR_sendmmsg,
	__NR_bind, __NR_connect, __NR_listen, __NR_accept, __NR_accept4, __NR_shutdown,
	__NR_getsockname, __NR_getpeername, __NR_setsockopt, __NR_getsockopt,
	__NR_clock_gettime, __NR_gettimeofday, __NR_clock_nanosleep, __NR_nanosleep,
	__NR_getrandom, __NR_prctl, __NR_getpid, __NR_gettid, __NR_fcntl,
	__NR_brk, __NR_mmap, __NR_munmap, __NR_mremap, __NR_madvise,
	__NR_rt_sigreturn, __NR_rt_sigprocmask, __NR_restart_syscall,
	__NR_exit, __NR_exit_group,
#ifdef __NR_poll
	__NR_poll,                    /* x86_64; musl's poll() is ppoll on aarch64 */
#endif
};
/* socket(2)'s families: IPv4 and IPv6 (queries, probes, metrics,
 * kube-proxy's port), netlink (conntrack). No AF_PACKET, no AF_UNIX. */
static const unsigned families[] = {AF_INET, AF_INET6, AF_NETLINK};

#define NSTMT (8 + 2 * (sizeof allowed / sizeof *allowed) + 2 * (sizeof families / sizeof *families) + 2)
#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JEQ(k, t, f) ((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, t, f))

/* Wrong arch (or x32's numbers on x86_64): killed outright, nothing to
 * log it with. A call off the list: SECCOMP_RET_TRAP, so on_sigsys()
 * names it before the process dies by SIGSYS. */
static size_t build(struct sock_filter *f)
{
	size_t n = 0;
	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n++] = JEQ(ARCH_NR, 1, 0);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
	for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
		f[n++] = JEQ(allowed[i], 0, 1);
		f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	f[n++] = JEQ(__NR_socket, 1, 0);
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
	/* args[0]'s low 32 bits (both arches are little-endian): the family */
	f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
	for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
		f[n++] = JEQ(families[i], 0, 1);
		f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
	return n;
}

/* A call off the list. SA_RESETHAND has already put SIGSYS back to its
 * default, so after the line, making the call again is death by SIGSYS
 * (the kernel forces it: blocked or not). The line is built as every
 * line is; the calls that takes (clock_gettime, poll, write) are listed. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	struct line l;
	(void)sig;
	(void)uc;
	log_begin(&l, "error", "confine_violation");
	log_kvu(&l, "syscall", (uint64_t)si->si_syscall);
	log_kv(&l, "effect", "killed by its seccomp filter (--no-confine turns it off, for debugging)");
	log_end(&l);
	syscall(si->si_syscall, 0, 0, 0, 0, 0, 0);
	_exit(1);                         /* never reached */
}

/* CAP_NET_ADMIN, if held, is all that stays. The bounding set first:
 * dropping from it needs CAP_SETPCAP, which capset() then removes. */
static int failed(char *why, size_t cap, const char *what, long arg)
{
	int e = errno;
	if (arg < 0)
		snprintf(why, cap, "%s: %s", what, strerror(e));
	else
		snprintf(why, cap, "%s %ld: %s", what, arg, strerror(e));
	return -1;
}

static int keep_net_admin(char *why, size_t cap)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	if (syscall(__NR_capget, &h, d) < 0)
		return failed(why, cap, "capget", -1);
	uint32_t keep = d[0].permitted & (1u << CAP_NET_ADMIN);
	for (int c = 0; c < 64 && prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
		if (c != CAP_NET_ADMIN && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EPERM)
			return failed(why, cap, "PR_CAPBSET_DROP", c);
	/* EINVAL: a kernel without ambient capabilities has none to clear */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return failed(why, cap, "PR_CAP_AMBIENT_CLEAR_ALL", -1);
	memset(d, 0, sizeof d);
	d[0].effective = d[0].permitted = keep;
	if (syscall(__NR_capset, &h, d) < 0)
		return failed(why, cap, "capset", -1);
	return 0;
}

static int install_filter(char *why, size_t cap)
{
	struct sock_filter f[NSTMT];
	struct sock_fprog prog = {.len = (unsigned short)build(f), .filter = f};
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO | SA_RESETHAND};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return failed(why, cap, "sigaction SIGSYS", -1);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		return failed(why, cap, "PR_SET_SECCOMP", -1);
	return 0;
}

int confine(void)
{
	char why[160];
	if (confine_disabled) {
		state = "off";
		return 0;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		err_line("cannot confine: PR_SET_NO_NEW_PRIVS: %s (--no-confine runs without)", strerror(errno));
		return -1;
	}
	if (keep_net_admin(why, sizeof why) < 0) {
		err_line("cannot confine: %s (--no-confine runs without)", why);
		return -1;
	}
#ifdef __SANITIZE_ADDRESS__
	/* ASan's runtime reads /proc/self/maps and LeakSanitizer stops the
	 * world with clone and ptrace at exit: calls no list for the loop
	 * can hold. Sanitizer builds keep the capability part only. */
	state = "caps";
	return 0;
#endif
	if (install_filter(why, sizeof why) < 0) {
		err_line("cannot confine: %s (--no-confine runs without)", why);
		return -1;
	}
	state = "seccomp";
#ifdef CONFINE_SELFTEST
	/* The test build only: one call off the list, which must kill. */
	syscall(__NR_getuid);
#endif
	return 0;
}

const char *confine_state(void) { return state; }
