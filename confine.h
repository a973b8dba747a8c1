/* confine.h - after set-up, the process gives up what its loop does not
 * use (OpenBSD's pledge after set-up is the model):
 *   - no_new_privs: nothing it could exec would gain a privilege;
 *   - capabilities: CAP_NET_ADMIN alone is kept (conntrack needs it);
 *     every other one leaves the effective, permitted, inheritable and
 *     ambient sets, and the bounding set where CAP_SETPCAP allows;
 *   - a seccomp filter of its own: the syscalls its loop makes (sockets
 *     of the families it uses, reads, writes, polls, clocks, memory),
 *     for this architecture only. Any other call kills the process by
 *     SIGSYS after one line saying which (event=confine_violation).
 * --no-confine (debugging only) turns all of it off, and says so. */
#ifndef CONFINE_H
#define CONFINE_H

/* Set from the options before confine(): 1 leaves the process as it is. */
extern int confine_disabled;

/* Confines the process, once its sockets are open. 0; or -1 after a
 * line on stderr saying why (the caller exits: running unconfined is
 * what --no-confine asks for, never a silent fallback). */
int confine(void);

/* What confine() did, for the start line: "seccomp", "off" (by the
 * option), "caps" (a sanitizer build: see confine.c), or "none" (not
 * called yet). */
const char *confine_state(void);

#endif
