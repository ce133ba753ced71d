/* fake_nvml.c as an older driver's libnvidia-ml exports it: unversioned symbols only, no
 * nvmlErrorString (see FAKE_NVML_LEGACY there). Built as fake_nvml_legacy.so. */
#define FAKE_NVML_LEGACY 1
#include "fake_nvml.c"
