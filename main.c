/* main.c - dns-blackhole-tester: the entry point.
 *
 * Holds the standard fds, dispatches `scan` (scan.c) or reads the
 * tester's options (opts.c), sets up the signals, and runs the tester
 * (tester.c). Where everything else is: README, "Where things are". */
#define _GNU_SOURCE
#include "confine.h"
#include "log.h"
#include "opts.h"
#include "scan.h"
#include "tester.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_signal(int sig) { stop_signal = sig; }

/* Sockets must never land on fd 0-2: with stdout closed, the query
 * socket would get fd 1 and every log line would be sent to the DNS
 * server. Hold any closed one with /dev/null, or (in an empty root with
 * no /dev) an unconnected UDP socket, on which a write just fails. */
static void hold_std_fds(void)
{
	/* poll flags a closed fd POLLNVAL, and poll is linked anyway */
	struct pollfd p[3] = {{.fd = 0}, {.fd = 1}, {.fd = 2}};
	if (poll(p, 3, 0) < 0)
		return;
	for (int fd = 0; fd <= 2; fd++) {
		if (!(p[fd].revents & POLLNVAL))
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n < 0)
			n = socket(AF_INET, SOCK_DGRAM, 0);
		if (n >= 0 && n != fd)             /* lowest free fd: it is fd */
			close(n);
	}
}

/* SIGINT/SIGTERM set stop_signal. They are blocked except while the
 * tester sleeps in ppoll() with *wait_mask, so a signal can never slip
 * in between its check of stop_signal and its sleep. */
static void setup_signals(sigset_t *wait_mask)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigset_t block;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);             /* a closed stdout is not fatal */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, wait_mask);
	sigdelset(wait_mask, SIGINT);
	sigdelset(wait_mask, SIGTERM);
}

int main(int argc, char **argv)
{
	struct opts o;
	sigset_t wait_mask;
	char err[4200];
	hold_std_fds();
	/* scan's options are its own: there, --no-confine comes first. */
	if (argc > 2 && !strcmp(argv[1], "--no-confine") && !strcmp(argv[2], "scan")) {
		confine_disabled = 1;
		argc--, argv++;
	}
	if (argc > 1 && !strcmp(argv[1], "scan"))
		return scan_main(argc - 1, argv + 1);
	switch (opts_parse(argc, argv, &o, err, sizeof err)) {
	case OPTS_HELP:
		return write_all(STDOUT_FILENO, opts_usage, strlen(opts_usage)) < 0 ? EXIT_FAILED : EXIT_OK;
	case OPTS_VERSION:
		return write_all(STDOUT_FILENO, PROG " " VERSION "\n", strlen(PROG " " VERSION "\n")) < 0
		       ? EXIT_FAILED : EXIT_OK;
	case OPTS_ERROR:
		err_line("%s (see --help)", err);   /* nothing has been sent yet */
		return EXIT_USAGE;
	case OPTS_RUN:
		break;
	}
	logcfg.json = o.json;
	logcfg.verbose = o.verbose;
	confine_disabled = o.no_confine;
	setup_signals(&wait_mask);
	return tester_run(&o, &wait_mask);
}
