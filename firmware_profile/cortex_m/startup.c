/* Bare-metal start-up for the Cortex-M measurement (QEMU mps2-an386 / mps2-an500):
 * a vector table, a reset handler that paints the stack (for the harness's
 * deepest-use figure), copies .data, clears .bss, turns the FPU on and calls main, and the two semihosting calls the harness needs (write a
 * string, exit). Not part of the export: only the measurement harness uses it. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack, _stack_bottom;
int main(void);
void reset_handler(void);
void fault_handler(void);

__attribute__((section(".vectors"), used))
static const void *const vectors[16] = {
    &_estack, (const void *)reset_handler, (const void *)fault_handler, (const void *)fault_handler,
    (const void *)fault_handler, (const void *)fault_handler, (const void *)fault_handler, 0, 0, 0, 0,
    (const void *)fault_handler, (const void *)fault_handler, 0, (const void *)fault_handler,
    (const void *)fault_handler,
};

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_write(const char *s) { semihost(0x04, s); }            /* SYS_WRITE0 */

void sh_exit(int code)
{
    static uint32_t block[2];
    block[0] = 0x20026u;                                       /* ADP_Stopped_ApplicationExit */
    block[1] = (uint32_t)code;
    semihost(0x20, block);                                     /* SYS_EXIT_EXTENDED */
    for (;;) {
    }
}

void fault_handler(void)
{
    sh_write("fault\n");
    sh_exit(3);
}

void reset_handler(void)
{
    uint32_t *src = &_sidata, *dst;
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = &_stack_bottom; dst < (uint32_t *)(sp - 32u);)   /* paint the stack below this frame */
        *dst++ = 0xDEADBEEFu;
    for (dst = &_sdata; dst < &_edata;)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;         /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\n isb");
#endif
    sh_exit(main());
}

/* newlib's libm reports errors through errno; nothing else of libc is linked */
int *__errno(void)
{
    static int err;
    return &err;
}
