/* Entry point: `cowlab-oracle agent` (driven by cowlab over stdin/stdout),
 * `cowlab-oracle mkfifo PATH...` (Node has no mkfifo), `cowlab-oracle probe`,
 * `cowlab-oracle reclaim DIR...` (what dead agents left changed on the machine, put back). */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "agent") == 0)
		return agent_main();
	if (argc >= 2 && strcmp(argv[1], "mkfifo") == 0) {
		for (int i = 2; i < argc; i++) {
			if (mkfifo(argv[i], 0600) < 0) {
				fprintf(stderr, "cowlab-oracle: mkfifo %s: %s\n", argv[i], strerror(errno));
				return 1;
			}
		}
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "probe") == 0) {
		char buf[PROBE_LEN];
		probe_report(buf, sizeof buf);
		printf("%s\n", buf);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "reclaim") == 0)
		return system_reclaim(argc - 2, argv + 2);
	fprintf(stderr, "usage: cowlab-oracle agent | mkfifo PATH... | probe | reclaim DIR...\n");
	return 2;
}
