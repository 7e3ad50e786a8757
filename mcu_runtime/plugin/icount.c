/* icount.c: QEMU 7.2 TCG plugin (plugin API v1) counting executed guest instructions.
 *
 * Debian 12 ships no qemu-plugin.h, so the handful of API prototypes used here are
 * declared by hand below (they are exported by the qemu-system-* binaries).
 *
 * Arguments (comma-separated after the .so path on -plugin):
 *   lo=ADDR,hi=ADDR        also count instructions whose PC is in [lo, hi) (static range;
 *                          callees outside the range are not counted)
 *   start=ADDR,stop=ADDR   dynamic window: count every instruction executed from reaching
 *                          `start` until reaching `stop` (callees included; summed over
 *                          repeated windows). E.g. the addresses of plat_count_begin/_end.
 *   mark=ADDR              record the running total each time ADDR executes (at most
 *                          MAX_MARKS), e.g. the generated runtime's msf_block_boundary
 *   out=PATH               write the result line to PATH instead of stderr
 * Result (one line, a second with marks=...):
 *   insns_total=N insns_in_range=M insns_window=W windows=K
 *   marks=T0,T1,...        (only with mark=; the total before each execution of ADDR)
 *
 * The line is printed from a libc atexit() handler: a semihosting exit calls exit()
 * directly and QEMU's own plugin atexit callback never runs. Build:
 *   gcc -O2 -shared -fPIC -o libmsf_icount.so icount.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API v1 (QEMU 4.2 .. 8.x), declared by hand ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
/* ---- end of API declarations ---- */

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t total, in_range, window, window_start, n_windows;
static uint64_t lo, hi, start_pc = UINT64_MAX, stop_pc = UINT64_MAX, mark_pc = UINT64_MAX;
#define MAX_MARKS 65536
static uint64_t marks[MAX_MARKS];
static unsigned n_marks;
static int in_window;
static char out_path[4096];

static void report(void) {
  FILE *f = out_path[0] ? fopen(out_path, "w") : NULL;
  if (!f) f = stderr;
  if (in_window) { /* program exited inside an open window: close it */
    window += total - window_start;
    in_window = 0;
  }
  fprintf(f, "insns_total=%llu insns_in_range=%llu insns_window=%llu windows=%llu\n",
          (unsigned long long)total, (unsigned long long)in_range, (unsigned long long)window,
          (unsigned long long)n_windows);
  if (mark_pc != UINT64_MAX) {
    fprintf(f, "marks=");
    for (unsigned i = 0; i < n_marks; i++) {
      fprintf(f, i ? ",%llu" : "%llu", (unsigned long long)marks[i]);
    }
    fprintf(f, "\n");
  }
  if (f != stderr) fclose(f);
}

/* Exec callbacks are registered before the inline counter on the same instruction, and the
 * same ordering holds at start and stop, so the window is [start, stop) exactly. */
static void on_start(unsigned int vcpu, void *ud) {
  (void)vcpu; (void)ud;
  if (!in_window) {
    in_window = 1;
    window_start = total;
  }
}
static void on_mark(unsigned int vcpu, void *ud) {
  (void)vcpu; (void)ud;
  if (n_marks < MAX_MARKS) marks[n_marks++] = total;
}
static void on_stop(unsigned int vcpu, void *ud) {
  (void)vcpu; (void)ud;
  if (in_window) {
    window += total - window_start;
    in_window = 0;
    n_windows++;
  }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t pc = qemu_plugin_insn_vaddr(insn);
    if (pc == start_pc) qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
    if (pc == stop_pc) qemu_plugin_register_vcpu_insn_exec_cb(insn, on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
    if (pc == mark_pc) qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
    if (pc >= lo && pc < hi)
      qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &in_range, 1);
  }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const void *info, int argc,
                                                               char **argv) {
  (void)info;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strncmp(a, "lo=", 3)) lo = strtoull(a + 3, NULL, 0);
    else if (!strncmp(a, "hi=", 3)) hi = strtoull(a + 3, NULL, 0);
    else if (!strncmp(a, "start=", 6)) start_pc = strtoull(a + 6, NULL, 0);
    else if (!strncmp(a, "stop=", 5)) stop_pc = strtoull(a + 5, NULL, 0);
    else if (!strncmp(a, "mark=", 5)) mark_pc = strtoull(a + 5, NULL, 0);
    else if (!strncmp(a, "out=", 4)) {
      strncpy(out_path, a + 4, sizeof out_path - 1);
    } else {
      fprintf(stderr, "msf_icount: unknown argument '%s'\n", a);
      return -1;
    }
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  atexit(report);
  return 0;
}
