// Node labels for Kubernetes (SPEC §8): a Node Feature Discovery local feature file, so the
// GPUs of every vendor become schedulable facts (nodeSelector: {grey-gpu-opt/gpu.vendor: amd})
// with one scheme.
//
// The file `DIR/grey-gpu-opt` holds one `P/name=value` a line. NFD's limits are kept by
// construction: the file stays under 64 KiB (per-product counts are dropped last-first when it
// would not, and said so), names and values follow the Kubernetes label syntax (values at most
// 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric). Anything else is
// sanitized; a label that sanitizes to nothing is left out, never emitted invalid.
//
// Pure parts (compute_node_labels, render_feature_file, sanitize_label_value) take data; the
// file parts write atomically (a dot-file NFD ignores, created O_EXCL|O_NOFOLLOW, fsync,
// rename) and refuse a symbolic link or other non-regular file at the target.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/gpu_spec.h"
#include "plan/plan.h"

namespace grey {

inline constexpr const char* kDefaultFeaturesDir =
    "/etc/kubernetes/node-feature-discovery/features.d";
inline constexpr const char* kFeatureFileName = "grey-gpu-opt";
inline constexpr const char* kDefaultLabelPrefix = "grey-gpu-opt";
// NFD reads at most 64 KiB of a feature file; ours stays strictly below.
inline constexpr size_t kMaxFeatureFileBytes = 64 * 1024;
inline constexpr size_t kMaxLabelValue = 63;  // also the longest name after the prefix

struct NodeLabel {
  std::string name;  // after the prefix: "gpu.count", "gpu.product.NVIDIA-H100-80GB-HBM3"
  std::string value;
  bool operator==(const NodeLabel&) const = default;
};

// A label value (or a part of a label name) in the Kubernetes syntax: each run of characters
// outside [A-Za-z0-9._-] becomes one '-', leading and trailing non-alphanumerics are dropped,
// at most `max` characters are kept (and the end trimmed again). "" when nothing is left.
std::string sanitize_label_value(std::string_view raw, size_t max = kMaxLabelValue);

// "" when `prefix` is a valid label prefix (a DNS subdomain: at most 253 characters, dot-separated
// parts of [a-z0-9-] starting and ending alphanumeric), else why not.
std::string check_label_prefix(std::string_view prefix);

// The labels of a node with these GPUs and this applied plan (null: none applied), in file
// order: gpu.count; gpu.vendor (nvidia|amd|intel|unknown, or mixed); where every GPU agrees
// gpu.product, gpu.memory (MiB), gpu.compute, gpu.driver, gpu.mig; plan.mode and
// plan.vram-cap-mb (the smallest cap over the plan's GPUs); with more than one vendor
// gpu.<vendor>.count; with more than one product (or a GPU without a name)
// gpu.product.<product>=<count>.
std::vector<NodeLabel> compute_node_labels(const std::vector<GpuSpec>& gpus, const Plan* applied);

struct FeatureFile {
  std::string text;                  // one "prefix/name=value\n" per label
  std::vector<std::string> dropped;  // names left out to stay under kMaxFeatureFileBytes
};
// The file for `labels` (prefix checked by the caller). Lines are added in order while the
// file stays under kMaxFeatureFileBytes; the rest are listed in `dropped`.
FeatureFile render_feature_file(const std::vector<NodeLabel>& labels, const std::string& prefix,
                                size_t max_bytes = kMaxFeatureFileBytes);

// The applied plan of a state directory (last_applied_plan.yaml, a state file: no symlink,
// ours). nullopt when there is none (*error empty) or it is unusable (*error says why).
std::optional<Plan> load_applied_plan(const std::string& state_dir, std::string* error);

// "" when `dir` is an existing directory, else a sentence saying what is wrong.
std::string check_features_dir(const std::string& dir);

// Writes `text` to DIR/grey-gpu-opt atomically (mode 0644: NFD may run as another user).
// Returns an error message, empty on success.
std::string write_feature_file(const std::string& dir, const std::string& text);

// Removes DIR/grey-gpu-opt when it is a regular file. Error message, or empty (also when there
// was nothing to remove).
std::string remove_feature_file(const std::string& dir);

// What the daemon runs (--labels-dir): keeps DIR/grey-gpu-opt equal to what `labels` would
// write for the daemon's GPUs and the state directory's applied plan. refresh() is cheap when
// nothing changed (one stat of the applied plan, one of the file), so it may run every tick.
class LabelsKeeper {
 public:
  LabelsKeeper(std::string dir, std::string prefix, std::string state_dir);

  struct Outcome {
    std::string event;  // "labels_written" | "labels_failed" | "" (nothing to report)
    std::string path;
    std::string error;
    std::vector<std::string> labels;   // the lines written ("prefix/name=value")
    std::vector<std::string> dropped;  // left out for the size limit
    std::vector<std::string> notes;    // e.g. an applied plan that could not be read
  };
  // Writes the file when its content would change or it is gone. A failure is reported once
  // per distinct error (labels_failed) and retried on the next call.
  Outcome refresh(const std::vector<GpuSpec>& gpus);
  // Removes the file if this keeper wrote it (clean stop). Error message or empty.
  std::string remove();
  const std::string& path() const { return path_; }
  bool has_written() const { return have_written_; }  // the file is ours and there

 private:
  std::string dir_, prefix_, state_dir_, path_;
  std::string written_;  // content last written ("" before the first write)
  bool have_written_ = false;
  std::string last_error_;  // last reported failure
  // Identity of the applied plan file when it was last read (dev, inode, size, mtime).
  // nullopt before the first look.
  std::optional<std::vector<long long>> plan_stamp_;
  std::optional<Plan> plan_;
  std::string plan_error_;
};

}  // namespace grey
