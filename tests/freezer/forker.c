/* A bounded fork bomb: the root keeps SLOTS children alive; each child forks a
 * grandchild, both live a few milliseconds and exit; the root reaps and
 * refills.  The root counts the children it made into argv[1] (rewritten
 * every 100 forks), so a test sees it going on. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOTS 12

static void child(void)
{
	pid_t g = fork();

	usleep(1000 + rand() % 4000);
	if (g > 0)
		waitpid(g, NULL, 0);
	_exit(0);
}

int main(int argc, char **argv)
{
	long made = 0;
	int alive = 0;

	setsid();	/* its own session: the tree is whole */
	if (argc != 2)
		return 2;
	for (;;) {
		while (alive < SLOTS) {
			pid_t p = fork();

			if (p == 0)
				child();
			if (p > 0) {
				alive++;
				made++;
			}
			if (made % 100 == 0) {
				FILE *f = fopen(argv[1], "w");

				if (f) {
					fprintf(f, "%ld\n", made);
					fclose(f);
				}
			}
		}
		if (wait(NULL) > 0)
			alive--;
	}
}
