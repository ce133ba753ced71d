#include "fleet/labels.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "plan/plan_io.h"
#include "util/state_dir.h"

namespace grey {

namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_label_char(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

std::string trim_to_alnum(std::string s) {
  size_t b = 0;
  while (b < s.size() && !is_alnum(s[b])) ++b;
  size_t e = s.size();
  while (e > b && !is_alnum(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// The value every GPU has for `get`, when all have one and they agree.
template <typename F>
auto agreed(const std::vector<GpuSpec>& gpus, F get) -> decltype(get(gpus.front())) {
  decltype(get(gpus.front())) first;
  for (size_t i = 0; i < gpus.size(); ++i) {
    auto v = get(gpus[i]);
    if (!v) return std::nullopt;
    if (i == 0)
      first = v;
    else if (*v != *first)
      return std::nullopt;
  }
  return first;
}

// The labels in file order, each name once.
class LabelList {
 public:
  // Adds name=value when the value sanitizes to something and the name fits; a name already
  // there keeps its first value.
  void add(std::string name, std::string_view raw_value) {
    std::string v = sanitize_label_value(raw_value);
    if (v.empty() || name.empty() || name.size() > kMaxLabelValue) return;
    if (!names_.insert(name).second) return;
    out_.push_back({std::move(name), std::move(v)});
  }
  std::vector<NodeLabel> take() { return std::move(out_); }

 private:
  std::vector<NodeLabel> out_;
  std::set<std::string> names_;
};

std::string dir_file(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return (d == "/" ? "" : d) + "/" + kFeatureFileName;
}

}  // namespace

std::string sanitize_label_value(std::string_view raw, size_t max) {
  std::string s;
  s.reserve(raw.size());
  bool in_run = false;
  for (char c : raw) {
    if (is_label_char(c)) {
      s += c;
      in_run = false;
    } else if (!in_run) {
      s += '-';
      in_run = true;
    }
  }
  s = trim_to_alnum(std::move(s));
  if (s.size() > max) s = trim_to_alnum(s.substr(0, max));
  return s;
}

std::string check_label_prefix(std::string_view prefix) {
  if (prefix.empty()) return "the label prefix is empty";
  if (prefix.size() > 253)
    return "the label prefix is " + std::to_string(prefix.size()) +
           " characters long; at most 253 are allowed";
  size_t start = 0;
  for (;;) {
    size_t dot = prefix.find('.', start);
    std::string_view part =
        prefix.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    auto bad = [&](const std::string& why) {
      return "the label prefix \"" + std::string(prefix) + "\" is not a DNS subdomain: " + why +
             " (allowed: dot-separated parts of a-z, 0-9 and '-', each starting and ending with "
             "a letter or digit)";
    };
    if (part.empty()) return bad("it has an empty part");
    if (part.size() > 63) return bad("a part is longer than 63 characters");
    for (char c : part)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        return bad(std::string("it contains '") + c + "'");
    if (part.front() == '-' || part.back() == '-') return bad("a part starts or ends with '-'");
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return "";
}

std::vector<NodeLabel> compute_node_labels(const std::vector<GpuSpec>& gpus, const Plan* applied) {
  LabelList out;
  out.add("gpu.count", std::to_string(gpus.size()));
  std::map<std::string, int> vendors;  // sanitized vendor -> count
  std::map<std::string, int> products;
  bool unnamed = false;
  for (const auto& g : gpus) {
    std::string v = sanitize_label_value(g.f.vendor.value_or("unknown"));
    ++vendors[v.empty() ? "unknown" : v];
    // The name part after "gpu.product." has to fit the 63 characters of a label name too.
    std::string p = g.f.model ? sanitize_label_value(*g.f.model, kMaxLabelValue - 12) : "";
    if (p.empty())
      unnamed = true;
    else
      ++products[p];
  }
  if (!gpus.empty()) out.add("gpu.vendor", vendors.size() == 1 ? vendors.begin()->first : "mixed");
  if (!gpus.empty()) {
    if (auto v = agreed(gpus, [](const GpuSpec& g) { return g.f.model; }))
      out.add("gpu.product", *v);
    if (auto v = agreed(gpus, [](const GpuSpec& g) { return g.f.vram_total_mb; }))
      out.add("gpu.memory", std::to_string(*v));
    if (auto v = agreed(gpus, [](const GpuSpec& g) { return g.f.compute_capability; }))
      out.add("gpu.compute", *v);
    if (auto v = agreed(gpus, [](const GpuSpec& g) { return g.f.driver_version; }))
      out.add("gpu.driver", *v);
    if (auto v = agreed(gpus, [](const GpuSpec& g) { return g.f.mig_mode; }))
      out.add("gpu.mig", *v ? "true" : "false");
  }
  if (applied) {
    out.add("plan.mode", to_string(applied->mode));
    std::optional<int64_t> cap;
    for (const auto& g : applied->gpus)
      if (g.per_process_vram_cap_mb && (!cap || *g.per_process_vram_cap_mb < *cap))
        cap = g.per_process_vram_cap_mb;
    if (cap) out.add("plan.vram-cap-mb", std::to_string(*cap));
  }
  if (vendors.size() > 1)
    for (const auto& [v, n] : vendors) out.add("gpu." + v + ".count", std::to_string(n));
  if (products.size() + (unnamed ? 1 : 0) > 1)
    for (const auto& [p, n] : products) out.add("gpu.product." + p, std::to_string(n));
  return out.take();
}

FeatureFile render_feature_file(const std::vector<NodeLabel>& labels, const std::string& prefix,
                                size_t max_bytes) {
  FeatureFile f;
  for (const auto& l : labels) {
    std::string line = prefix + "/" + l.name + "=" + l.value + "\n";
    if (!f.dropped.empty() || f.text.size() + line.size() >= max_bytes) {
      f.dropped.push_back(l.name);
      continue;
    }
    f.text += line;
  }
  return f;
}

std::optional<Plan> load_applied_plan(const std::string& state_dir, std::string* error) {
  if (error) error->clear();
  const std::string path = state_dir + "/last_applied_plan.yaml";
  std::string e;
  bool missing = false;
  auto text = read_file_checked(path, FileTrust::kState, &e, 64u << 20, &missing);
  if (!text) {
    if (!missing && error) *error = e;
    return std::nullopt;
  }
  auto p = plan_from_yaml_text(*text, &e);
  if (!p && error) *error = path + " is not a valid plan (" + e + ")";
  return p;
}

std::string check_features_dir(const std::string& dir) {
  if (dir.empty()) return "the output directory is empty";
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return dir + ": " + std::strerror(errno) +
           (errno == ENOENT ? " (is Node Feature Discovery installed? --output-dir names another "
                              "directory, --stdout prints the labels)"
                            : "");
  if (!S_ISDIR(st.st_mode)) return dir + " is not a directory";
  return "";
}

std::string write_feature_file(const std::string& dir, const std::string& text) {
  if (std::string e = check_features_dir(dir); !e.empty()) return e;
  return write_file_atomic(dir_file(dir), text, 0644);
}

std::string remove_feature_file(const std::string& dir) {
  const std::string path = dir_file(dir);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return "";
  if (!S_ISREG(st.st_mode)) return "refusing to remove " + path + ": it is not a regular file";
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return "cannot remove " + path + ": " + std::strerror(errno);
  return "";
}

LabelsKeeper::LabelsKeeper(std::string dir, std::string prefix, std::string state_dir)
    : dir_(std::move(dir)),
      prefix_(std::move(prefix)),
      state_dir_(std::move(state_dir)),
      path_(dir_file(dir_)) {}

LabelsKeeper::Outcome LabelsKeeper::refresh(const std::vector<GpuSpec>& gpus) {
  Outcome o;
  o.path = path_;
  // The applied plan, read again only when its file changed.
  struct stat st;
  std::vector<long long> stamp;
  if (::stat((state_dir_ + "/last_applied_plan.yaml").c_str(), &st) == 0)
    stamp = {static_cast<long long>(st.st_dev), static_cast<long long>(st.st_ino),
             static_cast<long long>(st.st_size), static_cast<long long>(st.st_mtim.tv_sec),
             static_cast<long long>(st.st_mtim.tv_nsec)};
  if (!plan_stamp_ || stamp != *plan_stamp_) {
    plan_stamp_ = stamp;
    plan_ = stamp.empty() ? std::nullopt : load_applied_plan(state_dir_, &plan_error_);
    if (stamp.empty()) plan_error_.clear();
    if (!plan_error_.empty()) o.notes.push_back(plan_error_ + "; the plan.* labels are left out");
  }
  FeatureFile f =
      render_feature_file(compute_node_labels(gpus, plan_ ? &*plan_ : nullptr), prefix_);
  bool gone = have_written_ && (::lstat(path_.c_str(), &st) != 0 || !S_ISREG(st.st_mode));
  if (have_written_ && f.text == written_ && !gone) return o;  // nothing changed
  std::string e = write_feature_file(dir_, f.text);
  if (!e.empty()) {
    if (e == last_error_) return o;  // reported already; retried on the next call
    last_error_ = e;
    o.event = "labels_failed";
    o.error = e;
    return o;
  }
  last_error_.clear();
  written_ = f.text;
  have_written_ = true;
  o.event = "labels_written";
  size_t start = 0;
  while (start < f.text.size()) {
    size_t nl = f.text.find('\n', start);
    o.labels.push_back(f.text.substr(start, nl - start));
    start = nl + 1;
  }
  o.dropped = f.dropped;
  return o;
}

std::string LabelsKeeper::remove() {
  if (!have_written_) return "";
  have_written_ = false;
  written_.clear();
  return remove_feature_file(dir_);
}

}  // namespace grey
