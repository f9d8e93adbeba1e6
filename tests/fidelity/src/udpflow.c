/*
 * udpflow: one UDP flow with a fixed source port, as a DNS resolver keeps it.
 * Sends COUNT datagrams "q" from SRC_PORT to IP:PORT, INTERVAL_MS apart, waits up to
 * TIMEOUT_MS for each reply (tcpserver -u answers with its name), and prints one line per
 * attempt plus a summary, in the style of tcpclient:
 *   udp i=0 t_ms=0 result=ok lat_us=812 rs=rs1
 *   summary label=L attempted=N ok=K timeout=T ...
 *   dist label=L rs1=.. rs2=..
 * Part of the rvs fidelity suite; runs in the kernel-ipvs VM and on the host.
 * Build: gcc -static -O2 -o udpflow udpflow.c
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	const char *ip = NULL, *label = "udp";
	int port = 53, sport = 5353, count = 10, interval = 100, timeout = 1000, opt;
	while ((opt = getopt(argc, argv, "d:p:s:n:i:t:l:")) != -1) {
		switch (opt) {
		case 'd': ip = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 's': sport = atoi(optarg); break;
		case 'n': count = atoi(optarg); break;
		case 'i': interval = atoi(optarg); break;
		case 't': timeout = atoi(optarg); break;
		case 'l': label = optarg; break;
		default:
			fprintf(stderr, "usage: udpflow -d IP [-p PORT] [-s SRC_PORT] [-n COUNT] [-i INTERVAL_MS] [-t TIMEOUT_MS] [-l LABEL]\n");
			return 2;
		}
	}
	if (!ip || count < 0 || count > 1000000) {
		fprintf(stderr, "udpflow: -d IP is required, 0 <= COUNT <= 1000000\n");
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) { perror("socket"); return 1; }
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(sport) };
	if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { perror("bind"); return 1; }
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, ip, &dst.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", ip); return 2; }
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) { perror("connect"); return 1; }

	char names[16][32];
	int hits[16] = {0}, nnames = 0, ok = 0, tmo = 0, refused = 0, other = 0;
	long long start = now_us();
	for (int i = 0; i < count; i++) {
		long long t0 = now_us();
		const char *result = "ok";
		char rs[32] = "-";
		if (send(fd, "q", 1, 0) < 0) {
			result = errno == ECONNREFUSED ? "refused" : "other";
		} else {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int r = poll(&p, 1, timeout);
			if (r == 0) {
				result = "timeout";
			} else {
				char buf[32];
				ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
				if (n < 0) {
					result = errno == ECONNREFUSED ? "refused" : "other";
				} else {
					buf[n] = 0;
					buf[strcspn(buf, "\r\n")] = 0;
					snprintf(rs, sizeof rs, "%s", buf);
				}
			}
		}
		long long lat = now_us() - t0;
		if (!strcmp(result, "ok")) {
			ok++;
			int k;
			for (k = 0; k < nnames && strcmp(names[k], rs); k++)
				;
			if (k == nnames && nnames < 16)
				snprintf(names[nnames++], sizeof names[0], "%s", rs);
			if (k < 16)
				hits[k]++;
		} else if (!strcmp(result, "timeout")) {
			tmo++;
		} else if (!strcmp(result, "refused")) {
			refused++;
		} else {
			other++;
		}
		printf("udp i=%d t_ms=%lld result=%s lat_us=%lld rs=%s\n", i, (t0 - start) / 1000, result, lat, rs);
		fflush(stdout);
		long long wait = interval * 1000LL - lat;
		if (wait > 0 && i + 1 < count)
			usleep(wait);
	}
	printf("summary label=%s attempted=%d ok=%d timeout=%d refused=%d other=%d\n", label, count, ok, tmo, refused, other);
	printf("dist label=%s", label);
	for (int k = 0; k < nnames; k++)
		printf(" %s=%d", names[k], hits[k]);
	printf("\n");
	return 0;
}
