// libFuzzer target for parse_nvidia_smi_list: must never crash, hang or leak on any input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sources/parsers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  grey::parse_nvidia_smi_list(std::string_view(reinterpret_cast<const char*>(d), n));
  return 0;
}
