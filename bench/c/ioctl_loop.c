/*
 * The baseline for bench/ioctl.ts: the same ioctl issued N times from C.
 *
 *   ioctl_loop <fd> <request (hex or decimal)> <arg bytes as hex, or "-" for NULL> <iterations> [<offset>:<bytes>]
 *
 * With <offset>:<bytes>, the u64 at that offset of the argument is set to the
 * address of a zeroed buffer of that many bytes in this process (a user
 * pointer the struct carries, such as allowed_iovas).
 *
 * Issues ioctl(fd, request, arg) iterations times on an fd inherited from
 * the bench process (so any setup done on it, such as an IOAS, is shared), and
 * prints the mean ns per call, the ret of the last call (or -errno), and
 * nothing else, on one line: "<ns_per_op> <ret>".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static unsigned char arg_bytes[1 << 16];

static int parse_hex(const char *text, size_t *length) {
	size_t n = strlen(text);
	if (n % 2 != 0 || n / 2 > sizeof(arg_bytes))
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int byte;
		if (sscanf(text + 2 * i, "%2x", &byte) != 1)
			return -1;
		arg_bytes[i] = (unsigned char)byte;
	}
	*length = n / 2;
	return 0;
}

int main(int argc, char **argv) {
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: %s <fd> <request> <arg-hex|-> <iterations> [<offset>:<bytes>]\n", argv[0]);
		return 2;
	}
	unsigned long request = strtoul(argv[2], NULL, 0);
	long iterations = strtol(argv[4], NULL, 0);
	size_t length = 0;
	void *arg = NULL;
	if (strcmp(argv[3], "-") != 0) {
		if (parse_hex(argv[3], &length) != 0) {
			fprintf(stderr, "bad arg bytes\n");
			return 2;
		}
		arg = arg_bytes;
	}
	if (argc == 6) {
		size_t offset = 0, bytes = 0;
		if (sscanf(argv[5], "%zu:%zu", &offset, &bytes) != 2 || offset + 8 > length) {
			fprintf(stderr, "bad scratch spec\n");
			return 2;
		}
		void *scratch = calloc(1, bytes ? bytes : 1);
		unsigned long long address = (unsigned long long)(unsigned long)scratch;
		memcpy(arg_bytes + offset, &address, sizeof(address));
	}
	int fd = atoi(argv[1]);
	struct timespec start, end;
	int ret = 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 0; i < iterations; i++) {
		ret = ioctl(fd, request, arg);
		if (ret < 0)
			ret = -errno;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
	printf("%.2f %d\n", ns / (double)iterations, ret);
	return 0;
}
