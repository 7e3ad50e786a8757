/* softfloat_trap.c: link-only stand-ins for the soft-float routines that Debian 12's
 * xtensa-lx106 libgcc lacks.
 *
 * The generated runtime selects its requantisation at run time (msf_requant.mode), so the
 * float branches of the kernels are linked even for a model generated with integer-only
 * (TFLite Micro, rq="fixed") requantisation, where they can never execute. The harness adds
 * this file to such builds (msfopt.mcu_runtime.mcurun, int_only targets) so they link; if a
 * float routine is ever reached the program stops with "SOFTFLOAT_TRAP" and exit code 126
 * (a CPU-exception status) instead of computing anything. Plain programs that use float
 * still fail to link on lx106 (the file is not part of the family's startup set). */
#include "plat.h"

#define MSF_SF_TRAP(name)                                   \
  __attribute__((noreturn)) static void trap_##name(void) { \
    plat_puts("SOFTFLOAT_TRAP " #name "\n");                \
    plat_exit(126);                                         \
  }
MSF_SF_TRAP(sf)

float __addsf3(float a, float b);
float __subsf3(float a, float b);
float __mulsf3(float a, float b);
float __divsf3(float a, float b);
float __floatsisf(int a);
float __floatunsisf(unsigned a);
int __fixsfsi(float a);
double __adddf3(double a, double b);
double __subdf3(double a, double b);
double __muldf3(double a, double b);
double __extendsfdf2(float a);
float __truncdfsf2(double a);

float __addsf3(float a, float b) { (void)a; (void)b; trap_sf(); }
float __subsf3(float a, float b) { (void)a; (void)b; trap_sf(); }
float __mulsf3(float a, float b) { (void)a; (void)b; trap_sf(); }
float __divsf3(float a, float b) { (void)a; (void)b; trap_sf(); }
float __floatsisf(int a) { (void)a; trap_sf(); }
float __floatunsisf(unsigned a) { (void)a; trap_sf(); }
int __fixsfsi(float a) { (void)a; trap_sf(); }
double __adddf3(double a, double b) { (void)a; (void)b; trap_sf(); }
double __subdf3(double a, double b) { (void)a; (void)b; trap_sf(); }
double __muldf3(double a, double b) { (void)a; (void)b; trap_sf(); }
double __extendsfdf2(float a) { (void)a; trap_sf(); }
float __truncdfsf2(double a) { (void)a; trap_sf(); }
