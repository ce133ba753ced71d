// Runs a library probe (NVML, CUDA, OpenCL) in a child process: `grey-gpu-opt __probe NAME`.
// A vendor library that hangs is killed with its process group at the deadline instead of
// leaving a stuck thread, one that crashes takes only the child with it, and the libraries'
// memory (the OpenCL ICDs load whole compilers) never lands in the detect process itself.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "sources/source.h"

namespace grey {

class IsolatedSource : public Source {
 public:
  IsolatedSource(std::unique_ptr<Source> inner, std::string exe)
      : inner_(std::move(inner)), exe_(std::move(exe)) {}
  std::string name() const override { return inner_->name(); }
  int authority() const override { return inner_->authority(); }
  SourceReport collect(SourceContext& ctx) override;

 private:
  std::unique_ptr<Source> inner_;
  std::string exe_;
};

nlohmann::json report_to_json(const SourceReport& r);
// Throws std::exception on a document that is not a report.
SourceReport report_from_json(const nlohmann::json& j);

// The in-process library source called NAME (nvml | cuda | opencl), or nullptr.
std::unique_ptr<Source> make_library_source(const std::string& name);

// The `__probe NAME` side: runs the in-process source and prints its report as JSON.
int run_probe_child(const std::string& name, std::ostream& out);

}  // namespace grey
