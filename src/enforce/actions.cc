#include "enforce/actions.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "util/strings.h"

namespace grey {

namespace {

std::string bus_key(const std::string& bus) {
  auto n = normalize_bus_id(bus);
  return n ? *n : to_lower(bus);
}

const DeviceState* find_state(const DeviceTarget& t, const std::vector<DeviceState>& states) {
  std::string key = bus_key(t.bus_id);
  for (const DeviceState& s : states) {
    if (!t.bus_id.empty() && bus_key(s.bus_id) == key) return &s;
  }
  return nullptr;
}

std::string joined_notes(const DeviceState* s) {
  if (!s || s->notes.empty()) return "";
  std::string out;
  for (const auto& n : s->notes) out += (out.empty() ? "" : "; ") + n;
  return " (" + out + ")";
}

Action base_action(const DeviceTarget& t, const char* setting) {
  Action a;
  a.id = "gpu" + std::to_string(t.index) + "." + setting;
  a.gpu_index = t.index;
  a.bus_id = bus_key(t.bus_id);
  a.uuid = t.uuid.value_or("");
  a.setting = setting;
  return a;
}

void refuse(Action& a, std::string reason) {
  a.skip = true;
  a.refused = true;
  a.skip_reason = std::move(reason);
}

// A power-limit bound: NaN when unknown.
bool known(double bound) {
  return !std::isnan(bound);
}

std::string range_text(double lo, double hi) {
  if (known(lo) && known(hi)) return watts_text(lo) + "-" + watts_text(hi) + " W";
  if (known(hi)) return "at most " + watts_text(hi) + " W";
  return "at least " + watts_text(lo) + " W";
}

Action persistence_action(const DeviceTarget& t, const DeviceState* s) {
  Action a = base_action(t, kSettingPersistence);
  a.wanted = "on";
  a.current = (s && s->persistence) ? onoff(*s->persistence) : "unknown";
  if (!s) {
    refuse(a, "the device's current state could not be read");
    return a;
  }
  if (s->nvml) {
    a.mechanism = kMechNvmlPersistence;
  } else if (s->nvidia_smi) {
    a.mechanism = nvidia_smi_mechanism(a.bus_id, a.setting, a.wanted);
  }
  if (s->persistence && *s->persistence) {
    a.skip = true;
    a.skip_reason = "already on";
    return a;
  }
  if (a.mechanism.empty())
    refuse(a,
           "no way to set persistence mode: neither NVML nor nvidia-smi answers for this "
           "device" +
               joined_notes(s));
  return a;
}

Action power_action(const DeviceTarget& t, const DeviceState* s) {
  Action a = base_action(t, kSettingPowerLimit);
  a.unit = "W";
  double want = *t.want_power_limit_w;
  a.wanted = std::isfinite(want) ? watts_text(want) : "invalid";
  a.current = (s && s->power_limit_w) ? watts_text(*s->power_limit_w) : "unknown";
  if (!s) {
    refuse(a, "the device's current state could not be read");
    return a;
  }

  if (t.vendor == "nvidia") {
    if (s->nvml)
      a.mechanism = kMechNvmlPowerLimit;
    else if (s->nvidia_smi)
      a.mechanism = nvidia_smi_mechanism(a.bus_id, a.setting, a.wanted);
  } else if ((t.vendor == "amd" || t.vendor == "intel") && s->power_sysfs_path) {
    a.mechanism = kMechSysfsPrefix + *s->power_sysfs_path;
  }

  // The range: the device's own as read now, else what detection recorded. Plain doubles, NaN
  // when unknown: local copies of std::optional<double> make GCC 12 at -Os warn
  // -Wmaybe-uninitialized (a false positive).
  double lo = s->power_min_w.value_or(NAN), hi = s->power_max_w.value_or(NAN);
  std::string source = s->range_source;
  if (!known(lo) && !known(hi) && (t.device_min_w || t.device_max_w)) {
    lo = t.device_min_w.value_or(NAN);
    hi = t.device_max_w.value_or(NAN);
    source = "detection";
  }
  if (known(lo) && known(hi) && lo > hi) {  // a sensor glitch: trust neither bound
    a.note = "device range " + watts_text(lo) + "-" + watts_text(hi) + " W is inverted; ignored";
    lo = hi = NAN;
  } else if (known(lo) || known(hi)) {
    a.note = "device range " + range_text(lo, hi) + (source.empty() ? "" : " (" + source + ")");
  }

  if (!std::isfinite(want) || want <= 0) {
    refuse(a, "wanted power limit " + a.wanted + " W is not a positive number");
    return a;
  }
  if ((known(lo) && want < lo - 1e-9) || (known(hi) && want > hi + 1e-9)) {
    refuse(a, a.wanted + " W is outside the device's range " + range_text(lo, hi) +
                  (source.empty() ? "" : " (" + source + ")"));
    return a;
  }
  if (!known(hi)) {
    // Without a known maximum only lowering is safe: the current limit is one the device
    // already runs at.
    if (!s->power_limit_w) {
      refuse(a,
             "the device reports neither its power-limit range nor its current "
             "limit, so " +
                 a.wanted + " W cannot be checked");
      return a;
    }
    if (want > *s->power_limit_w + 1e-9) {
      refuse(a,
             "the device reports no maximum power limit; raising it above the "
             "current " +
                 a.current + " W is not checked against anything");
      return a;
    }
    if (a.note.empty()) a.note = "device reports no power-limit range; lowering only";
  }
  if (s->power_limit_w && same_value(a.setting, a.current, a.wanted)) {
    a.skip = true;
    a.skip_reason = "already " + a.current + " W";
    return a;
  }
  if (a.mechanism.empty()) {
    std::string why = t.vendor == "nvidia" ? "neither NVML nor nvidia-smi answers for this device"
                      : (t.vendor == "amd" || t.vendor == "intel")
                          ? std::string("no hwmon ") +
                                (t.vendor == "amd" ? "power1_cap" : "power1_max") +
                                " file for this device"
                          : "no power-limit mechanism for vendor '" + t.vendor + "'";
    refuse(a, "no way to set the power limit: " + why + joined_notes(s));
  }
  return a;
}

}  // namespace

std::vector<Action> plan_actions(const std::vector<DeviceTarget>& targets,
                                 const std::vector<DeviceState>& states) {
  std::vector<Action> out;
  for (const DeviceTarget& t : targets) {
    const DeviceState* s = find_state(t, states);
    if (t.want_persistence && t.vendor == "nvidia") out.push_back(persistence_action(t, s));
    if (t.want_power_limit_w) out.push_back(power_action(t, s));
  }
  return out;
}

std::string describe(const Action& a) {
  std::string unit = a.unit.empty() ? "" : " " + a.unit;
  std::string s = "GPU " + std::to_string(a.gpu_index) + " (" + a.bus_id + ") " + a.setting + ": " +
                  a.current + " -> " + a.wanted + unit;
  if (!a.mechanism.empty()) s += " via " + a.mechanism;
  if (a.skip) s += std::string(a.refused ? "; refused: " : "; skipped: ") + a.skip_reason;
  return s;
}

nlohmann::json action_to_json(const Action& a) {
  return nlohmann::json{
      {"id", a.id},         {"gpu_index", a.gpu_index}, {"bus_id", a.bus_id},
      {"uuid", a.uuid},     {"setting", a.setting},     {"current", a.current},
      {"wanted", a.wanted}, {"unit", a.unit},           {"mechanism", a.mechanism},
      {"skip", a.skip},     {"refused", a.refused},     {"skip_reason", a.skip_reason},
      {"note", a.note}};
}

nlohmann::json actions_to_json(const std::vector<Action>& actions) {
  nlohmann::json j = nlohmann::json::array();
  for (const Action& a : actions) j.push_back(action_to_json(a));
  return j;
}

}  // namespace grey
