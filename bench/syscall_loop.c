// One syscall pattern in a tight loop, timed with CLOCK_MONOTONIC. Waits for
// a line on stdin before it opens anything or starts the clock, so the driver
// can track it (and set its thread's span) first: descriptors are then opened
// under that span.
// usage: syscall_loop getppid|open|read|write|connect ITERATIONS  ->  prints ns per op
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s getppid|open|read|write|connect ITERATIONS\n", argv[0]);
		return 2;
	}
	const char *op = argv[1];
	long n = atol(argv[2]);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	strcpy(sun.sun_path, "/nonexistent/agentrace-bench.sock");
	char byte = 'x';

	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 1;

	int fd = -1;
	if (!strcmp(op, "read"))
		fd = open("/dev/zero", O_RDONLY);
	else if (!strcmp(op, "write"))
		fd = open("/dev/null", O_WRONLY);
	else if (!strcmp(op, "connect"))
		fd = socket(AF_UNIX, SOCK_STREAM, 0);

	double t0 = now_ns();
	if (!strcmp(op, "getppid")) {
		for (long i = 0; i < n; i++)
			getppid();
	} else if (!strcmp(op, "open")) {
		for (long i = 0; i < n; i++)
			close(open("/dev/null", O_RDONLY));
	} else if (!strcmp(op, "read")) {
		for (long i = 0; i < n; i++)
			if (read(fd, &byte, 1) != 1)
				return 1;
	} else if (!strcmp(op, "write")) {
		for (long i = 0; i < n; i++)
			if (write(fd, &byte, 1) != 1)
				return 1;
	} else if (!strcmp(op, "connect")) {
		for (long i = 0; i < n; i++)
			connect(fd, (struct sockaddr *)&sun, sizeof(sun)); /* ENOENT, fast */
	} else {
		fprintf(stderr, "unknown op %s\n", op);
		return 2;
	}
	double t1 = now_ns();
	if (fd >= 0)
		close(fd);
	printf("%.1f\n", (t1 - t0) / n);
	return 0;
}
