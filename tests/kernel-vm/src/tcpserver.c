/*
 * tcpserver — the rvs kernel VM's real-server program (also built for the host by
 * tests/fidelity/host-run.sh).
 *
 * Listens on TCP port -p (80) of address -b (any).  Each accepted connection
 * is served by a child process that writes the server's name and a newline
 * (-n, e.g. "rs1\n") and then waits for the client to close — or for -w
 * seconds without data (120) — before closing its own end.  So the client is
 * always the side that closes first, and its socket is the one in TIME_WAIT.
 *
 * With -u, a datagram to UDP port -p on the same address is answered with the
 * same line, to the sender.
 *
 * Build: gcc -static -O2 -Wall -o tcpserver tcpserver.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char line[128];
static size_t line_len;

/* The child's whole job: say the name, then wait for the client's close. */
static void serve_one(int fd, int idle_s)
{
	if (write(fd, line, line_len) < 0)
		_exit(0);
	char sink[512];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		int r = poll(&p, 1, idle_s * 1000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (read(fd, sink, sizeof sink) <= 0)
			break;
	}
	close(fd);
	_exit(0);
}

static int open_socket(int type, const struct sockaddr_in *at)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)at, sizeof *at) < 0) {
		close(fd);
		return -1;
	}
	if (type == SOCK_STREAM && listen(fd, 1024) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *name = "server", *addr = "0.0.0.0";
	int port = 80, with_udp = 0, idle_s = 120, c;
	while ((c = getopt(argc, argv, "p:n:b:uw:")) != -1) {
		switch (c) {
		case 'p': port = atoi(optarg); break;
		case 'n': name = optarg; break;
		case 'b': addr = optarg; break;
		case 'u': with_udp = 1; break;
		case 'w': idle_s = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: tcpserver [-p PORT] [-n NAME] [-b IP] [-u] [-w IDLE_SECS]\n");
			return 2;
		}
	}
	line_len = (size_t)snprintf(line, sizeof line, "%s\n", name);
	if (line_len >= sizeof line)
		line_len = sizeof line - 1;

	struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	if (inet_pton(AF_INET, addr, &at.sin_addr) != 1) {
		fprintf(stderr, "tcpserver: bad address %s\n", addr);
		return 2;
	}
	/* children are never waited for; closed peers must not kill us */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	int tcp = open_socket(SOCK_STREAM, &at);
	if (tcp < 0) {
		perror("tcpserver: tcp socket");
		return 1;
	}
	int udp = -1;
	if (with_udp) {
		udp = open_socket(SOCK_DGRAM, &at);
		if (udp < 0) {
			perror("tcpserver: udp socket");
			return 1;
		}
	}

	struct pollfd w[2] = { { .fd = tcp, .events = POLLIN }, { .fd = udp, .events = POLLIN } };
	for (;;) {
		if (poll(w, udp >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("tcpserver: poll");
			return 1;
		}
		if (udp >= 0 && (w[1].revents & POLLIN)) {
			char buf[2048];
			struct sockaddr_in peer;
			socklen_t plen = sizeof peer;
			if (recvfrom(udp, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&peer, &plen) >= 0)
				sendto(udp, line, line_len, 0, (struct sockaddr *)&peer, plen);
		}
		if (w[0].revents & POLLIN) {
			int fd = accept4(tcp, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			pid_t pid = fork();
			if (pid == 0) {
				close(tcp);
				if (udp >= 0)
					close(udp);
				serve_one(fd, idle_s);
			}
			close(fd);
		}
	}
}
