/* userfaultfd: opening one for the calling process, and the API handshake (shared by the
 * scenario processes, the agent and the probe). */
#include "oracle.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

int uffd_open(void)
{
	int fd = -1, err = ENOSYS;
#ifdef SYS_userfaultfd
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	err = errno;
#endif
	/* vm.unprivileged_userfaultfd=0 refuses the system call to the unprivileged; the device
	 * node (5.11) may still be open to us. */
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			err = errno;
		close(dev);
		if (fd >= 0)
			return fd;
	}
	return -err;
}

int uffd_api(int fd, uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	return ioctl(fd, UFFDIO_API, &api) == 0 ? 0 : -errno;
}
