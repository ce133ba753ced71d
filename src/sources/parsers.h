// Every text parser, one per tool output format. Pure functions: text in, observations and
// notes out. They never throw and never crash on any input (each has a fuzz target).
#pragma once

#include <string_view>

#include "sources/source.h"

namespace grey {

// nvidia-smi
ParseResult parse_nvidia_smi_xml(std::string_view text);    // nvidia-smi -q -x
ParseResult parse_nvidia_smi_csv(std::string_view text);    // --query-gpu=... --format=csv
ParseResult parse_nvidia_smi_table(std::string_view text);  // plain `nvidia-smi`
ParseResult parse_nvidia_smi_list(std::string_view text);   // nvidia-smi -L (GPUs, MIG devices)
// The --query-gpu field list we ask for (columns are mapped by header, so order is free).
extern const char* const kNvidiaSmiQueryFields;

// AMD
ParseResult parse_rocm_smi_json(std::string_view text);  // rocm-smi <flags> --json
ParseResult parse_rocm_smi_text(std::string_view text);  // plain rocm-smi / --showproductname
ParseResult parse_amd_smi_json(std::string_view text);   // amd-smi static --json
ParseResult parse_amd_smi_text(std::string_view text);   // amd-smi list / static / monitor

// Intel
ParseResult parse_intel_gpu_top_json(std::string_view text);  // intel_gpu_top -J
ParseResult parse_xpu_smi(std::string_view text);  // xpu-smi discovery (table, -j, --dump csv)

// Generic
ParseResult parse_lspci(std::string_view text);       // plain, -nn, -v, -vmm -nn -D (detected)
ParseResult parse_lshw(std::string_view text);        // text tree or -json (detected)
ParseResult parse_vulkaninfo(std::string_view text);  // --summary or full text
ParseResult parse_glxinfo(std::string_view text);     // -B or full
ParseResult parse_clinfo(std::string_view text);      // plain, --raw or --json (detected)

}  // namespace grey
