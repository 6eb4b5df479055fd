/* Debian 12's UML kernel (6.1) on a host CPU with AMX (lab/lab.sh preloads this into linux.uml there).
 *
 * UML saves and restores its processes' FP state with PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE in a buffer
 * sized for the FP features it knows; the host kernel takes a SETREGSET only with a buffer of its full XSAVE
 * size (arch/x86/kernel/fpu/regset.c), which AMX makes larger, so every guest died at boot ("ptrace set fp
 * regs failed, errno = 14"). This wrapper hands such a SETREGSET over in a buffer of the host's size (CPUID
 * 0xD: the largest XSAVE area), the state copied in and the rest zeroed: the header's feature bits say which
 * components are present, so the kernel sets exactly what UML gave. Every other ptrace call passes through.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <elf.h>

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

long ptrace(enum __ptrace_request req, ...)
{
    static ptrace_fn real;
    static unsigned int host_size;
    static _Thread_local unsigned char buf[64 * 1024] __attribute__((aligned(64)));
    va_list ap;
    va_start(ap, req);
    pid_t pid = va_arg(ap, pid_t);
    void *addr = va_arg(ap, void *);
    void *data = va_arg(ap, void *);
    va_end(ap);
    if (!real)
        real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    if (!host_size) {
        unsigned int a, b, c, d;
        __cpuid_count(0xd, 0, a, b, c, d);
        host_size = c;
    }
    if (req == PTRACE_SETREGSET && (long)addr == NT_X86_XSTATE && data) {
        struct iovec *iov = data;
        if (iov->iov_len < host_size && host_size <= sizeof(buf)) {
            struct iovec big = { buf, host_size };
            memset(buf, 0, host_size);
            memcpy(buf, iov->iov_base, iov->iov_len);
            return real(req, pid, addr, &big);
        }
    }
    return real(req, pid, addr, data);
}
