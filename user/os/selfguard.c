/* selfguard: see selfguard.h. */
#include "selfguard.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

static struct rlimit saved_nofile;
static int saved;

void selfguard_init(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		saved_nofile = rl;
		rl.rlim_cur = rl.rlim_max;
		saved = setrlimit(RLIMIT_NOFILE, &rl) == 0;
	}
	if (isatty(STDIN_FILENO) || isatty(STDOUT_FILENO) || isatty(STDERR_FILENO))
		return; /* interactive: ^C on the terminal is how the user stops it */
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return; /* no controlling terminal */
	/* not for a session leader: it would hang up the terminal's foreground group */
	if (getsid(0) != getpid())
		ioctl(fd, TIOCNOTTY);
	close(fd);
}

void selfguard_child_restore(void)
{
	if (saved)
		setrlimit(RLIMIT_NOFILE, &saved_nofile);
}
