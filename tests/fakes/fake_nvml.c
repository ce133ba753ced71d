/* A fake libnvidia-ml for the NVML probe's tests. Exported names are the real NVML API names
 * (https://docs.nvidia.com/deploy/nvml-api/); types are re-declared here from the same
 * documentation, independently of src/bindings/nvml_api.h, so a layout mistake there shows.
 *
 * All values are INVENTED (plausible, not captured from real hardware):
 *   GPU 0: "NVIDIA H100 80GB HBM3" at 0000:1b:00.0, 10de:2330, 81559 MiB, CC 9.0, 1980 MHz,
 *          5120-bit bus, Gen5 x16, slowdown 90 / shutdown 92 / gpu max 87 C, 700 W limit
 *          (200..700, default 700), MIG off, persistence on.
 *   GPU 1: "NVIDIA A100-SXM4-40GB" at 0000:41:00.0, 10de:20b0, 40960 MiB, CC 8.0, 1410 MHz,
 *          5120-bit bus, Gen4 x16, slowdown 87 / shutdown 90 / gpu max 85 C, 400 W limit
 *          (100..400, default 400), MIG on, persistence off.
 *   GPU 2..7 (FAKE_NVML_GPUS > 2): copies of GPU 1 at buses 0x42.. .
 *   System: driver "550.54.15", CUDA 12040 (12.4).
 *
 * Environment, read at call time:
 *   FAKE_NVML_GPUS=N                       device count (default 2, at most 8)
 *   FAKE_NVML_INIT_ERROR=code              nvmlInit_v2 returns that nvmlReturn_t
 *   FAKE_NVML_CALLS=path                   nvmlInit_v2 appends "nvmlInit_v2" to that file
 *   FAKE_NVML_HANG_INIT=1                  nvmlInit_v2 never returns
 *   FAKE_NVML_HANG=init|count|set          nvmlInit_v2 / nvmlDeviceGetCount_v2 and
 *                                          nvmlDeviceGetHandleByPciBusId_v2 / both set-calls
 *                                          never return (a comma list names several)
 *   FAKE_NVML_CRASH=init|count|set         the same calls die with SIGSEGV (the default
 *                                          action, even where a sanitizer handles SIGSEGV;
 *                                          FAKE_NVML_CRASH_KEEP_HANDLER=1: the process's own
 *                                          SIGSEGV handler runs first)
 *   FAKE_NVML_UNSUPPORTED_TEMP_THRESHOLDS=1 thresholds answer NVML_ERROR_NOT_SUPPORTED (3)
 *   FAKE_NVML_LOST_GPU=i                   nvmlDeviceGetHandleByIndex_v2(i) answers
 *                                          NVML_ERROR_GPU_IS_LOST (15)
 * Deliberate symbol gaps: only the unversioned nvmlSystemGetCudaDriverVersion is exported (so
 * the probe's fallback from _v2 runs), and nvmlDeviceGetUtilizationRates is not exported at
 * all (so a missing symbol is exercised). fake_nvml_init_count/fake_nvml_shutdown_count let
 * tests check that every successful init is paired with a shutdown.
 *
 * Telemetry additions (tests/nvml_telemetry_test.cc, the daemon's tests):
 *   FAKE_NVML_SCRIPT=path    live values follow a script (re-read when the path changes or
 *                            after fake_nvml_reset()). One directive per line, '#' comments:
 *       tick T G TEMP_C USED_MIB UTIL_PCT POWER_MW
 *           from tick T on, GPU G reads these values (the line with the highest T <= the
 *           current tick wins; a GPU without a line keeps the built-in values above).
 *           UTIL_PCT is served only when built with FAKE_NVML_WITH_UTILIZATION (the default
 *           build keeps nvmlDeviceGetUtilizationRates unexported, see above).
 *       proc T G PID USED_MIB NAME
 *           from tick T on, compute process PID (named NAME, no spaces) uses USED_MIB on GPU
 *           G; USED_MIB -1: the process is gone from tick T on.
 *       putil T G PID SM_PCT
 *           from tick T on, nvmlDeviceGetProcessUtilization reports SM_PCT for PID on GPU G
 *           (one sample per tick, timeStamp (T+1)*1e6 us); no putil line: NVML_ERROR_NOT_FOUND.
 *   FAKE_NVML_PROCS_PER_GPU=N  N more compute processes on every GPU after the script's (the
 *                            scrape benchmark's load): pid 100000 + 10000 * G + i (i < N, N at
 *                            most 9999), using i % 100 + 1 MiB, named "worker".
 *   THE TICK: starts at 0 and advances by one at the START of every nvmlDeviceGetTemperature
 *   call for GPU 0 except the first (so the first sample reads tick 0, the second tick 1 ...).
 *   A sampler that reads GPU 0's temperature first sees one tick per sample on every call.
 *   FAKE_NVML_BLOCK_TEMP_AT_TICK=N  the GPU-0 nvmlDeviceGetTemperature call that enters tick N
 *                            never returns (a stuck driver call; other threads are not held).
 *   Set-calls nvmlDeviceSetPowerManagementLimit(dev, mW) (NVML_ERROR_INVALID_ARGUMENT outside
 *   the constraints) and nvmlDeviceSetPersistenceMode(dev, mode) store the value that the
 *   getters then return, and append "set <function> <gpu index> <value>" to the file named by
 *   FAKE_NVML_RECORD (if set).
 *   FAKE_NVML_DENY_SETS=1   set-calls return NVML_ERROR_NO_PERMISSION (4), change nothing and
 *                            append "denied <function> <gpu index> <value>" instead.
 *   A value set by ANOTHER process is read back from the FAKE_NVML_RECORD file (the last "set"
 *   line of that function and GPU), as a real device keeps it: grey-gpu-opt sets in a child
 *   process and reads back in the next one.
 *
 * FAKE_NVML_LEGACY (built as fake_nvml_legacy.so by fake_nvml_legacy.c): the same GPUs as an
 * older driver's library exports them, for the binding's fallbacks (tests/nvml_binding_test.cc):
 * only the unversioned nvmlInit, nvmlDeviceGetCount, nvmlDeviceGetHandleByIndex,
 * nvmlDeviceGetPciInfo (the older, shorter struct: only its first 16 bytes, busIdLegacy's place,
 * are its own; the fake writes a WRONG bus id where the newer struct's busId is, which a caller
 * must not read) and nvmlDeviceGetComputeRunningProcesses / nvmlDeviceGetGraphicsRunningProcesses
 * (nvmlProcessInfo_v1_t, 16 bytes); and no nvmlErrorString, nvmlDeviceGetMemoryInfo_v2 or
 * nvmlDeviceGetPowerUsage.
 *   Also exported: nvmlDeviceGetMemoryInfo_v2 (checks the version field; reserves 64 MiB,
 *   which v1's "used" includes and v2's does not; FAKE_NVML_NO_MEMORY_V2=1 makes it answer
 *   NVML_ERROR_NOT_SUPPORTED), nvmlDeviceGetComputeRunningProcesses_v3,
 *   nvmlDeviceGetGraphicsRunningProcesses_v3 (never any), nvmlDeviceGetProcessUtilization,
 *   nvmlSystemGetProcessName; fake_nvml_reset() (tick, script cache and stored sets back to
 *   the start) and fake_nvml_tick(). Every call is serialized by one mutex. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FAKE_NVML_LEGACY
#define nvmlInit_v2 nvmlInit
#define nvmlDeviceGetCount_v2 nvmlDeviceGetCount
#define nvmlDeviceGetHandleByIndex_v2 nvmlDeviceGetHandleByIndex
#define nvmlDeviceGetPciInfo_v3 nvmlDeviceGetPciInfo
#define nvmlDeviceGetComputeRunningProcesses_v3 nvmlDeviceGetComputeRunningProcesses
#define nvmlDeviceGetGraphicsRunningProcesses_v3 nvmlDeviceGetGraphicsRunningProcesses
/* Not exported by the legacy library. */
#define FAKE_NEWER_ONLY static __attribute__((unused))
#else
#define FAKE_NEWER_ONLY
#endif

typedef int nvmlReturn_t;

typedef struct {
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

typedef struct {
  unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
  const char* name;
  const char* uuid;
  unsigned bus, pci_id, mem_mib, used_mib, cc_major, cc_minor, clock, bus_width, gen, width;
  unsigned shutdown, slowdown, mem_max, gpu_max, temp;
  unsigned limit_mw, min_mw, max_mw, default_mw, usage_mw, mig, persistence;
} fake_gpu;

typedef struct {
  int index;
} nvmlDevice_st;
typedef nvmlDevice_st* nvmlDevice_t;

static const fake_gpu kGpus[2] = {
    {"NVIDIA H100 80GB HBM3",
     "GPU-3f2a7c1e-0000-4000-8000-000000000001",
     0x1b,
     0x233010de,
     81559,
     329,
     9,
     0,
     1980,
     5120,
     5,
     16,
     92,
     90,
     95,
     87,
     34,
     700000,
     200000,
     700000,
     700000,
     69850,
     0,
     1},
    {"NVIDIA A100-SXM4-40GB",
     "GPU-5b8d0c2a-0000-4000-8000-000000000002",
     0x41,
     0x20b010de,
     40960,
     0,
     8,
     0,
     1410,
     5120,
     4,
     16,
     90,
     87,
     95,
     85,
     29,
     400000,
     100000,
     400000,
     400000,
     55120,
     1,
     0},
};
static nvmlDevice_st g_handles[8];
static int g_inits, g_shutdowns;

/* ---- Telemetry state (guarded by g_mu) ---- */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_xids_delivered;       /* FAKE_NVML_XIDS entries handed out so far */
static long g_tick = -1;           /* -1: no GPU-0 temperature call yet (reads as tick 0) */
static unsigned g_set_limit_mw[8]; /* 0: not set */
static int g_set_persistence[8] = {-1, -1, -1, -1, -1, -1, -1, -1};

#define FAKE_MAX_LINES 512
typedef struct {
  char kind; /* 't' tick, 'p' proc, 'u' putil */
  long tick;
  int gpu;
  long a, b, c, d; /* tick: temp used util power_mw; proc: pid used; putil: pid sm */
  char name[64];
} script_line;
static script_line g_script[FAKE_MAX_LINES];
static int g_script_n;
static char g_script_path[4096];
static int g_script_loaded;

static long cur_tick(void) {
  return g_tick < 0 ? 0 : g_tick;
}

/* Caller holds g_mu. */
static void load_script(void) {
  const char* path = getenv("FAKE_NVML_SCRIPT");
  if (!path || !*path) {
    g_script_n = 0;
    g_script_loaded = 0;
    g_script_path[0] = '\0';
    return;
  }
  if (g_script_loaded && strcmp(path, g_script_path) == 0) return;
  snprintf(g_script_path, sizeof g_script_path, "%s", path);
  g_script_loaded = 1;
  g_script_n = 0;
  FILE* f = fopen(path, "r");
  if (!f) return;
  char line[512];
  while (g_script_n < FAKE_MAX_LINES && fgets(line, sizeof line, f)) {
    script_line* l = &g_script[g_script_n];
    memset(l, 0, sizeof *l);
    char kind[16] = {0};
    if (sscanf(line, "%15s", kind) != 1 || kind[0] == '#') continue;
    if (strcmp(kind, "tick") == 0 && sscanf(line, "%*s %ld %d %ld %ld %ld %ld", &l->tick, &l->gpu,
                                            &l->a, &l->b, &l->c, &l->d) == 6) {
      l->kind = 't';
    } else if (strcmp(kind, "proc") == 0 && sscanf(line, "%*s %ld %d %ld %ld %63s", &l->tick,
                                                   &l->gpu, &l->a, &l->b, l->name) == 5) {
      l->kind = 'p';
    } else if (strcmp(kind, "putil") == 0 &&
               sscanf(line, "%*s %ld %d %ld %ld", &l->tick, &l->gpu, &l->a, &l->b) == 4) {
      l->kind = 'u';
    } else {
      continue;
    }
    if (l->gpu < 0 || l->gpu >= 8) continue;
    ++g_script_n;
  }
  fclose(f);
}

/* The tick line in force for GPU g, or NULL. Caller holds g_mu. */
static const script_line* tick_line(int g) {
  load_script();
  const script_line* best = NULL;
  for (int i = 0; i < g_script_n; ++i) {
    const script_line* l = &g_script[i];
    if (l->kind == 't' && l->gpu == g && l->tick <= cur_tick() && (!best || l->tick >= best->tick))
      best = l;
  }
  return best;
}

/* The proc/putil line in force for (kind, g, pid), or NULL. Caller holds g_mu. */
static const script_line* pid_line(char kind, int g, long pid) {
  const script_line* best = NULL;
  for (int i = 0; i < g_script_n; ++i) {
    const script_line* l = &g_script[i];
    if (l->kind == kind && l->gpu == g && l->a == pid && l->tick <= cur_tick() &&
        (!best || l->tick >= best->tick))
      best = l;
  }
  return best;
}

/* Distinct pids of `kind` lines for GPU g whose line in force is live. Caller holds g_mu. */
static int live_pids(char kind, int g, long* pids, int cap) {
  load_script();
  int n = 0;
  for (int i = 0; i < g_script_n; ++i) {
    const script_line* l = &g_script[i];
    if (l->kind != kind || l->gpu != g) continue;
    int seen = 0;
    for (int j = 0; j < n; ++j)
      if (pids[j] == l->a) seen = 1;
    if (seen) continue;
    const script_line* cur = pid_line(kind, g, l->a);
    if (!cur || cur->b < 0) continue;
    if (n < cap) pids[n++] = l->a;
  }
  return n;
}

void fake_nvml_reset(void) {
  pthread_mutex_lock(&g_mu);
  g_tick = -1;
  g_script_loaded = 0;
  g_script_n = 0;
  for (int i = 0; i < 8; ++i) {
    g_set_limit_mw[i] = 0;
    g_set_persistence[i] = -1;
  }
  g_xids_delivered = 0;
  pthread_mutex_unlock(&g_mu);
}

long fake_nvml_tick(void) {
  pthread_mutex_lock(&g_mu);
  long t = cur_tick();
  pthread_mutex_unlock(&g_mu);
  return t;
}

static void record(const char* what, const char* fn, int gpu, long value) {
  const char* path = getenv("FAKE_NVML_RECORD");
  if (!path || !*path) return;
  FILE* f = fopen(path, "a");
  if (!f) return;
  fprintf(f, "%s %s %d %ld\n", what, fn, gpu, value);
  fclose(f);
}

static int env_int(const char* name, int dflt) {
  const char* v = getenv(name);
  return (v && *v) ? atoi(v) : dflt;
}

/* FAKE_NVML_PROCS_PER_GPU, within 0..9999. */
static int synth_procs(void) {
  int n = env_int("FAKE_NVML_PROCS_PER_GPU", 0);
  return n < 0 ? 0 : n > 9999 ? 9999 : n;
}

/* Whether the comma list in $name holds `what`. */
static int env_lists(const char* name, const char* what) {
  const char* v = getenv(name);
  size_t n = strlen(what);
  while (v && *v) {
    const char* end = strchr(v, ',');
    size_t len = end ? (size_t)(end - v) : strlen(v);
    if (len == n && strncmp(v, what, n) == 0) return 1;
    v = end ? end + 1 : NULL;
  }
  return 0;
}

/* FAKE_NVML_HANG / FAKE_NVML_CRASH at the call named `what`. */
static void misbehave(const char* what) {
  if (env_lists("FAKE_NVML_CRASH", what)) {
    if (!env_int("FAKE_NVML_CRASH_KEEP_HANDLER", 0)) signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    _exit(139);
  }
  if (env_lists("FAKE_NVML_HANG", what)) {
    for (;;) pause();
  }
}

/* The value of the last "set <fn> <gpu> <value>" line in FAKE_NVML_RECORD; 0 when none. */
static int recorded_set(const char* fn, int gpu, long* value) {
  const char* path = getenv("FAKE_NVML_RECORD");
  if (!path || !*path) return 0;
  FILE* f = fopen(path, "r");
  if (!f) return 0;
  char line[256], what[32], name[96];
  int found = 0, g = 0;
  long v = 0;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%31s %95s %d %ld", what, name, &g, &v) == 4 && strcmp(what, "set") == 0 &&
        strcmp(name, fn) == 0 && g == gpu) {
      *value = v;
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static int gpu_count(void) {
  int n = env_int("FAKE_NVML_GPUS", 2);
  return n < 0 ? 0 : (n > 8 ? 8 : n);
}

static const fake_gpu* gpu_of(nvmlDevice_t d, unsigned* bus) {
  if (!d || d->index < 0 || d->index >= gpu_count()) return NULL;
  const fake_gpu* g = &kGpus[d->index == 0 ? 0 : 1];
  if (bus) *bus = d->index <= 1 ? g->bus : 0x40u + (unsigned)d->index;
  return g;
}

#define GPU_OR_FAIL(d)                 \
  const fake_gpu* g = gpu_of(d, NULL); \
  if (!g) return 2 /* NVML_ERROR_INVALID_ARGUMENT */

int fake_nvml_init_count(void) {
  return g_inits;
}
int fake_nvml_shutdown_count(void) {
  return g_shutdowns;
}

nvmlReturn_t nvmlInit_v2(void) {
  const char* calls = getenv("FAKE_NVML_CALLS");
  if (calls && *calls) {
    FILE* f = fopen(calls, "a");
    if (f) {
      fputs("nvmlInit_v2\n", f);
      fclose(f);
    }
  }
  misbehave("init");
  if (env_int("FAKE_NVML_HANG_INIT", 0)) {
    for (;;) sleep(1);
  }
  int e = env_int("FAKE_NVML_INIT_ERROR", 0);
  if (e) return e;
  ++g_inits;
  return 0;
}

nvmlReturn_t nvmlShutdown(void) {
  ++g_shutdowns;
  return 0;
}

FAKE_NEWER_ONLY const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case 0:
      return "Success";
    case 2:
      return "Invalid Argument";
    case 3:
      return "Not Supported";
    case 9:
      return "Driver Not Loaded";
    case 15:
      return "GPU is lost";
    case 18:
      return "Driver/library version mismatch";
    default:
      return "Unknown Error";
  }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* buf, unsigned int len) {
  if (len < 10) return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
  snprintf(buf, len, "%s", "550.54.15");
  return 0;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* v) {
  *v = 12040;
  return 0;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* n) {
  misbehave("count");
  *n = (unsigned)gpu_count();
  return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t* d) {
  if ((int)i >= gpu_count()) return 2;
  if (env_int("FAKE_NVML_LOST_GPU", -1) == (int)i) return 15; /* NVML_ERROR_GPU_IS_LOST */
  g_handles[i].index = (int)i;
  *d = &g_handles[i];
  return 0;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int* i) {
  GPU_OR_FAIL(d);
  (void)g;
  *i = (unsigned)d->index;
  return 0;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* buf, unsigned int len) {
  GPU_OR_FAIL(d);
  snprintf(buf, len, "%s", g->name);
  return 0;
}

/* MIG (FAKE_NVML_MIG=1): GPU 0 runs in MIG mode with two instances, GI 1/CI 0 (3g, 40192
 * MiB) and GI 2/CI 0 (1g, 9856 MiB); their handles have index 100 + n, which every non-MIG
 * call refuses as an invalid argument, as NVML does for most calls on a MIG handle. */
static nvmlDevice_st g_mig_handles[2] = {{100}, {101}};
static const unsigned kMigGi[2] = {1, 2}, kMigMem[2] = {40192, 9856};
static int mig_on(void) {
  return env_int("FAKE_NVML_MIG", 0) == 1;
}
static int mig_of(nvmlDevice_t d) {
  return d && mig_on() && d->index >= 100 && d->index < 102 ? d->index - 100 : -1;
}
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int* count) {
  GPU_OR_FAIL(d);
  if (!g->mig && !(mig_on() && d->index == 0)) return 3; /* NOT_SUPPORTED: MIG off */
  *count = 7;
  return 0;
}
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int i, nvmlDevice_t* m) {
  GPU_OR_FAIL(d);
  (void)g;
  if (!mig_on() || d->index != 0 || i >= 2) return 6; /* NOT_FOUND: no instance in that slot */
  *m = &g_mig_handles[i];
  return 0;
}
nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t d, unsigned int* is_mig) {
  *is_mig = mig_of(d) >= 0;
  return 0;
}
nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t d, unsigned int* id) {
  int n = mig_of(d);
  if (n < 0) return 2;
  *id = kMigGi[n];
  return 0;
}
nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t d, unsigned int* id) {
  if (mig_of(d) < 0) return 2;
  *id = 0;
  return 0;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char* buf, unsigned int len) {
  if (mig_of(d) >= 0) {
    snprintf(buf, len, "MIG-4f2a0000-0000-4000-8000-%012d", mig_of(d));
    return 0;
  }
  GPU_OR_FAIL(d);
  if (d->index > 1) {
    snprintf(buf, len, "GPU-5b8d0c2a-0000-4000-8000-%012d", d->index + 1);
  } else {
    snprintf(buf, len, "%s", g->uuid);
  }
  return 0;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t* p) {
  unsigned bus = 0;
  const fake_gpu* g = gpu_of(d, &bus);
  if (!g) return 2;
  memset(p, 0, sizeof *p);
  p->domain = 0;
  p->bus = bus;
  p->device = 0;
  p->pciDeviceId = g->pci_id;
  p->pciSubSystemId = 0x16c110de;
  snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "0000:%02X:00.0", bus);
#ifdef FAKE_NVML_LEGACY
  snprintf(p->busId, sizeof p->busId, "00000000:99:00.0"); /* not the old struct's bytes */
#else
  snprintf(p->busId, sizeof p->busId, "00000000:%02X:00.0", bus);
#endif
  return 0;
}

/* Used MiB of a GPU now: the script's, else the built-in value. */
static unsigned long long used_mib_of(nvmlDevice_t d, const fake_gpu* g) {
  pthread_mutex_lock(&g_mu);
  const script_line* l = tick_line(d->index);
  unsigned long long used = l && l->b >= 0 ? (unsigned long long)l->b : g->used_mib;
  pthread_mutex_unlock(&g_mu);
  if (used > g->mem_mib) used = g->mem_mib;
  return used;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* m) {
  if (mig_of(d) >= 0) {
    m->total = (unsigned long long)kMigMem[mig_of(d)] << 20;
    m->used = 13ull << 20;
    m->free = m->total - m->used;
    return 0;
  }
  GPU_OR_FAIL(d);
  m->total = (unsigned long long)g->mem_mib << 20;
  m->used = used_mib_of(d, g) << 20;
  m->free = m->total - m->used;
  return 0;
}

typedef struct {
  unsigned int version;
  unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

FAKE_NEWER_ONLY nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t* m) {
  GPU_OR_FAIL(d);
  if (env_int("FAKE_NVML_NO_MEMORY_V2", 0)) return 3; /* NVML_ERROR_NOT_SUPPORTED */
  if (!m || m->version != ((unsigned)sizeof(nvmlMemory_v2_t) | (2u << 24)))
    return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
  unsigned long long used = used_mib_of(d, g);
  unsigned long long reserved = used < 64 ? used : 64; /* part of v1's "used" */
  m->total = (unsigned long long)g->mem_mib << 20;
  m->reserved = reserved << 20;
  m->used = (used - reserved) << 20;
  m->free = m->total - (used << 20);
  return 0;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int* major, int* minor) {
  GPU_OR_FAIL(d);
  *major = (int)g->cc_major;
  *minor = (int)g->cc_minor;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, int type, unsigned int* mhz) {
  GPU_OR_FAIL(d);
  if (type != 0) return 2; /* the probe only asks NVML_CLOCK_GRAPHICS */
  *mhz = g->clock;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->bus_width;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->gen;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->width;
  return 0;
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t d, int type, unsigned int* t) {
  GPU_OR_FAIL(d);
  if (env_int("FAKE_NVML_UNSUPPORTED_TEMP_THRESHOLDS", 0)) return 3;
  switch (type) {
    case 0:
      *t = g->shutdown;
      return 0;
    case 1:
      *t = g->slowdown;
      return 0;
    case 2:
      *t = g->mem_max;
      return 0;
    case 3:
      *t = g->gpu_max;
      return 0;
    default:
      return 2;
  }
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int* t) {
  GPU_OR_FAIL(d);
  if (sensor != 0) return 2;
  pthread_mutex_lock(&g_mu);
  if (d->index == 0) {
    ++g_tick;
    const char* b = getenv("FAKE_NVML_BLOCK_TEMP_AT_TICK");
    if (b && *b && atol(b) == g_tick) {
      pthread_mutex_unlock(&g_mu);
      for (;;) sleep(1); /* a stuck driver call */
    }
  }
  const script_line* l = tick_line(d->index);
  *t = l && l->a >= 0 ? (unsigned)l->a : g->temp;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

#ifdef FAKE_NVML_WITH_UTILIZATION
typedef struct {
  unsigned int gpu, memory;
} nvmlUtilization_t;

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t* u) {
  GPU_OR_FAIL(d);
  (void)g;
  pthread_mutex_lock(&g_mu);
  const script_line* l = tick_line(d->index);
  u->gpu = l && l->c >= 0 ? (unsigned)l->c : 0;
  u->memory = 0;
  pthread_mutex_unlock(&g_mu);
  return 0;
}
#endif

static unsigned limit_of(nvmlDevice_t d, const fake_gpu* g) {
  pthread_mutex_lock(&g_mu);
  unsigned v = g_set_limit_mw[d->index] ? g_set_limit_mw[d->index] : g->limit_mw;
  long rec = 0;
  if (!g_set_limit_mw[d->index] &&
      recorded_set("nvmlDeviceSetPowerManagementLimit", d->index, &rec) && rec > 0)
    v = (unsigned)rec;
  pthread_mutex_unlock(&g_mu);
  return v;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = limit_of(d, g);
  return 0;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = limit_of(d, g);
  return 0;
}

nvmlReturn_t nvmlDeviceSetPowerManagementLimit(nvmlDevice_t d, unsigned int mw) {
  misbehave("set");
  GPU_OR_FAIL(d);
  if (env_int("FAKE_NVML_DENY_SETS", 0)) {
    record("denied", "nvmlDeviceSetPowerManagementLimit", d->index, (long)mw);
    return 4; /* NVML_ERROR_NO_PERMISSION */
  }
  if (mw < g->min_mw || mw > g->max_mw) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
  pthread_mutex_lock(&g_mu);
  g_set_limit_mw[d->index] = mw;
  pthread_mutex_unlock(&g_mu);
  record("set", "nvmlDeviceSetPowerManagementLimit", d->index, (long)mw);
  return 0;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t d, unsigned int* lo,
                                                          unsigned int* hi) {
  GPU_OR_FAIL(d);
  *lo = g->min_mw;
  *hi = g->max_mw;
  return 0;
}

nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->default_mw;
  return 0;
}

FAKE_NEWER_ONLY nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  pthread_mutex_lock(&g_mu);
  const script_line* l = tick_line(d->index);
  *v = l && l->d >= 0 ? (unsigned)l->d : g->usage_mw;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int* current, unsigned int* pending) {
  GPU_OR_FAIL(d);
  *current = mig_on() && d->index == 0 ? 1 : g->mig;
  *pending = *current;
  return 0;
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t d, int* mode) {
  GPU_OR_FAIL(d);
  pthread_mutex_lock(&g_mu);
  int set = g_set_persistence[d->index];
  long rec = 0;
  if (set < 0 && recorded_set("nvmlDeviceSetPersistenceMode", d->index, &rec)) set = rec ? 1 : 0;
  pthread_mutex_unlock(&g_mu);
  *mode = set >= 0 ? set : (int)g->persistence;
  return 0;
}

nvmlReturn_t nvmlDeviceSetPersistenceMode(nvmlDevice_t d, int mode) {
  misbehave("set");
  GPU_OR_FAIL(d);
  (void)g;
  if (env_int("FAKE_NVML_DENY_SETS", 0)) {
    record("denied", "nvmlDeviceSetPersistenceMode", d->index, (long)mode);
    return 4; /* NVML_ERROR_NO_PERMISSION */
  }
  if (mode != 0 && mode != 1) return 2;
  pthread_mutex_lock(&g_mu);
  g_set_persistence[d->index] = mode;
  pthread_mutex_unlock(&g_mu);
  record("set", "nvmlDeviceSetPersistenceMode", d->index, (long)mode);
  return 0;
}

#ifdef FAKE_NVML_LEGACY
/* nvmlProcessInfo_v1_t, as the unversioned symbols fill it. */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_t;
#else
/* nvmlProcessInfo_t as the _v3 symbols fill it. */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
#endif

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                     nvmlProcessInfo_t* infos) {
  GPU_OR_FAIL(d);
  (void)g;
  if (!count) return 2;
  long pids[64];
  pthread_mutex_lock(&g_mu);
  int n = live_pids('p', d->index, pids, 64);
  int synth = synth_procs();
  if (!infos || *count < (unsigned)(n + synth)) {
    *count = (unsigned)(n + synth);
    pthread_mutex_unlock(&g_mu);
    return n + synth ? 7 : 0; /* NVML_ERROR_INSUFFICIENT_SIZE */
  }
  for (int i = 0; i < n; ++i) {
    const script_line* l = pid_line('p', d->index, pids[i]);
    infos[i].pid = (unsigned)pids[i];
    infos[i].usedGpuMemory = (unsigned long long)l->b << 20;
  }
  for (int i = 0; i < synth; ++i) {
    infos[n + i].pid = (unsigned)(100000 + 10000 * d->index + i);
    infos[n + i].usedGpuMemory = (unsigned long long)(i % 100 + 1) << 20;
  }
  n += synth;
#ifndef FAKE_NVML_LEGACY
  for (int i = 0; i < n; ++i) {
    infos[i].gpuInstanceId = 0xFFFFFFFFu; /* MIG off */
    infos[i].computeInstanceId = 0xFFFFFFFFu;
  }
#endif
  *count = (unsigned)n;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                      nvmlProcessInfo_t* infos) {
  GPU_OR_FAIL(d);
  (void)g;
  (void)infos;
  if (!count) return 2;
  *count = 0;
  return 0;
}

typedef struct {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d,
                                             nvmlProcessUtilizationSample_t* samples,
                                             unsigned int* count, unsigned long long last_seen) {
  GPU_OR_FAIL(d);
  (void)g;
  if (!count) return 2;
  long pids[64];
  nvmlProcessUtilizationSample_t out[64];
  int n = 0;
  pthread_mutex_lock(&g_mu);
  int np = live_pids('u', d->index, pids, 64);
  for (int i = 0; i < np; ++i) {
    const script_line* l = pid_line('u', d->index, pids[i]);
    unsigned long long ts = (unsigned long long)(cur_tick() + 1) * 1000000ull;
    if (ts <= last_seen) continue;
    memset(&out[n], 0, sizeof out[n]);
    out[n].pid = (unsigned)pids[i];
    out[n].timeStamp = ts;
    out[n].smUtil = (unsigned)l->b;
    ++n;
  }
  pthread_mutex_unlock(&g_mu);
  if (n == 0) return 6; /* NVML_ERROR_NOT_FOUND: no sample since last_seen */
  if (!samples || *count < (unsigned)n) {
    *count = (unsigned)n;
    return 7;
  }
  memcpy(samples, out, sizeof out[0] * (size_t)n);
  *count = (unsigned)n;
  return 0;
}

nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char* name, unsigned int length) {
  if (!name || length == 0) return 2;
  pthread_mutex_lock(&g_mu);
  load_script();
  const char* found = NULL;
  for (int i = 0; i < g_script_n; ++i)
    if (g_script[i].kind == 'p' && g_script[i].a == (long)pid) found = g_script[i].name;
  int synth = synth_procs();
  if (!found && pid >= 100000 && pid < 180000 && (int)((pid - 100000) % 10000) < synth)
    found = "worker";
  if (found) snprintf(name, length, "/usr/bin/%s", found);
  pthread_mutex_unlock(&g_mu);
  return found ? 0 : 6;
}

/* ---- Health: XID events, ECC, retired pages, remapped rows ------------------------------
 *   FAKE_NVML_XIDS="G:XID,G:XID,..."  nvmlEventSetWait_v2 delivers these once each, in order
 *                                     (eventType 0x8, eventData XID, device GPU G's handle);
 *                                     then NVML_ERROR_TIMEOUT (10) after sleeping at most
 *                                     20 ms of the timeout. fake_nvml_reset() starts over.
 *   FAKE_NVML_ECC="VC,VU,AC,AU"       GPU 0's volatile corrected/uncorrected and aggregate
 *                                     corrected/uncorrected counts (other GPUs: 0); unset:
 *                                     NVML_ERROR_NOT_SUPPORTED.
 *   FAKE_NVML_RETIRED="SBE,DBE,PENDING"  GPU 0's retired pages and pending flag.
 *   FAKE_NVML_REMAP="CORR,UNC,PENDING,FAILURE"  GPU 0's remapped rows. */
typedef struct nvmlEventSet_st {
  int registered;
} nvmlEventSet_st;
typedef struct {
  nvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} fake_event_data;
static nvmlEventSet_st g_event_set;

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_st** set) {
  if (!set) return 2;
  g_event_set.registered = 0;
  *set = &g_event_set;
  return 0;
}
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types,
                                      nvmlEventSet_st* set) {
  GPU_OR_FAIL(d);
  (void)g;
  if (!set || !(types & 0x8ULL)) return 2;
  ++set->registered;
  return 0;
}
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_st* set, fake_event_data* data, unsigned ms) {
  if (!set || !data) return 2;
  const char* v = getenv("FAKE_NVML_XIDS");
  pthread_mutex_lock(&g_mu);
  int want = g_xids_delivered, n = 0;
  const char* p = v;
  while (p && *p) {
    int gpu = 0;
    unsigned long long xid = 0;
    if (sscanf(p, "%d:%llu", &gpu, &xid) != 2) break;
    if (n == want && gpu >= 0 && gpu < 8) {
      ++g_xids_delivered;
      pthread_mutex_unlock(&g_mu);
      memset(data, 0, sizeof *data);
      data->device = &g_handles[gpu];
      data->eventType = 0x8ULL;
      data->eventData = xid;
      return 0;
    }
    ++n;
    p = strchr(p, ',');
    if (p) ++p;
  }
  pthread_mutex_unlock(&g_mu);
  usleep((ms < 20 ? ms : 20) * 1000u);
  return 10; /* NVML_ERROR_TIMEOUT */
}
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_st* set) {
  if (!set) return 2;
  set->registered = 0;
  return 0;
}

static int env_numbers(const char* name, unsigned long long* out, int cap) {
  const char* v = getenv(name);
  int n = 0;
  while (v && *v && n < cap) {
    out[n++] = strtoull(v, NULL, 10);
    v = strchr(v, ',');
    if (v) ++v;
  }
  return n;
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter,
                                         unsigned long long* count) {
  GPU_OR_FAIL(d);
  (void)g;
  unsigned long long v[4] = {0, 0, 0, 0};
  if (env_numbers("FAKE_NVML_ECC", v, 4) == 0) return 3; /* NVML_ERROR_NOT_SUPPORTED */
  if (!count || type < 0 || type > 1 || counter < 0 || counter > 1) return 2;
  *count = d->index == 0 ? v[counter * 2 + type] : 0;
  return 0;
}
nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t d, int cause, unsigned int* n,
                                       unsigned long long* addresses) {
  GPU_OR_FAIL(d);
  (void)g;
  (void)addresses;
  unsigned long long v[3] = {0, 0, 0};
  if (env_numbers("FAKE_NVML_RETIRED", v, 3) == 0) return 3;
  if (!n || cause < 0 || cause > 1) return 2;
  unsigned have = d->index == 0 ? (unsigned)v[cause] : 0;
  if (*n < have) {
    *n = have;
    return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
  }
  *n = have;
  return 0;
}
nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t d, int* pending) {
  GPU_OR_FAIL(d);
  (void)g;
  unsigned long long v[3] = {0, 0, 0};
  if (env_numbers("FAKE_NVML_RETIRED", v, 3) == 0) return 3;
  if (!pending) return 2;
  *pending = d->index == 0 && v[2] ? 1 : 0;
  return 0;
}
nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int* corr, unsigned int* unc,
                                       unsigned int* pending, unsigned int* failure) {
  GPU_OR_FAIL(d);
  (void)g;
  unsigned long long v[4] = {0, 0, 0, 0};
  if (env_numbers("FAKE_NVML_REMAP", v, 4) == 0) return 3;
  if (!corr || !unc || !pending || !failure) return 2;
  int z = d->index != 0;
  *corr = z ? 0 : (unsigned)v[0];
  *unc = z ? 0 : (unsigned)v[1];
  *pending = z ? 0 : (unsigned)v[2];
  *failure = z ? 0 : (unsigned)v[3];
  return 0;
}

/* nvmlDeviceGetHandleByPciBusId_v2: "DDDD:BB:DD.F" or "DDDDDDDD:BB:DD.F" of a fake GPU. */
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char* bus_id, nvmlDevice_t* d) {
  misbehave("count"); /* finding a device, like nvmlDeviceGetCount_v2 */
  unsigned dom = 0, bus = 0, dev = 0, fn = 0;
  if (!bus_id || !d || sscanf(bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) return 2;
  for (int i = 0; i < gpu_count(); ++i) {
    unsigned b = 0;
    g_handles[i].index = i;
    if (gpu_of(&g_handles[i], &b) && b == bus && dom == 0 && dev == 0 && fn == 0) {
      *d = &g_handles[i];
      return 0;
    }
  }
  return 6; /* NVML_ERROR_NOT_FOUND */
}
