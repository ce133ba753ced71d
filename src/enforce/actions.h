// Enforcement as data: from what is wanted of each device (DeviceTarget) and what the device
// is now (DeviceState) compute the ordered list of writes. Pure: no I/O, no clock, so the
// list for a fixture is golden-tested byte for byte; the applier (applier.h) performs it.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "enforce/device_control.h"

namespace grey {

// What the plan wants of one device (filled by the apply command from plan + detection).
struct DeviceTarget {
  int index = 0;
  std::string bus_id;  // normalized "0000:01:00.0"
  std::optional<std::string> uuid;
  std::string vendor;  // nvidia | amd | intel | unknown
  std::optional<std::string> kernel_driver;
  bool want_persistence = false;  // NVIDIA only; ignored for other vendors
  std::optional<double> want_power_limit_w;
  // The device's range as detection saw it; used when the live state has none.
  std::optional<double> device_min_w, device_max_w;
};

struct Action {
  std::string id;  // "gpu0.power_limit_w": unique within one plan
  int gpu_index = 0;
  std::string bus_id;
  std::string uuid;       // "" when unknown
  std::string setting;    // kSettingPersistence | kSettingPowerLimit
  std::string current;    // canonical text ("250", "off") or "unknown"
  std::string wanted;     // canonical text
  std::string mechanism;  // see device_control.h; "" when there is none
  std::string unit;       // "W" for power, "" for persistence
  bool skip = false;      // nothing is written for this action
  // A skip that is an error: the value was refused (outside the device's range, not a
  // positive number) or there is no way to write it. The apply fails when any is refused.
  bool refused = false;
  std::string skip_reason;
  std::string note;  // context worth a reader's eye ("device range 0-390 W (power1_cap_min/max)")
};

// One action per wanted setting, in target order; persistence before the power limit.
// `states` are matched to targets by bus id. Pure.
std::vector<Action> plan_actions(const std::vector<DeviceTarget>& targets,
                                 const std::vector<DeviceState>& states);

// "GPU 0 (0000:0b:00.0) power_limit_w: 260 -> 200 W via sysfs:/sys/...". Skipped actions end
// with "skipped: <reason>" (or "refused: <reason>").
std::string describe(const Action& a);

nlohmann::json action_to_json(const Action& a);
nlohmann::json actions_to_json(const std::vector<Action>& actions);

}  // namespace grey
