#include "sources/pci_names.h"

#include <cctype>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "util/strings.h"

extern "C" {
#include <pci/pci.h>
}

namespace grey {

namespace {

// libpci reports fatal problems (a malformed ids file, out of memory) through
// pci_access::error, which must not return: the default handler exits the process. Ours jumps
// back to the lookup that was running, which then treats that database as unusable. The
// jump only crosses libpci's C frames; no C++ object lives between setjmp and longjmp.
thread_local sigjmp_buf* t_jump = nullptr;

__attribute__((noreturn)) void on_error(char* /*msg*/, ...) {
  if (t_jump) siglongjmp(*t_jump, 1);
  std::abort();  // Unreachable: every libpci call below runs with t_jump set.
}
void on_warning(char* /*msg*/, ...) {}
void on_debug(char* /*msg*/, ...) {}

struct Db {
  pci_access* acc = nullptr;
  bool broken = false;
};

std::mutex g_mu;
Db g_system;  // guarded by g_mu; lives for the whole process (libpci caches the parsed list)

// Deliberately no pci_init(): it probes an access method for reading configuration space,
// which name lookups do not need, and where none works (a container without /proc/bus/pci
// and /sys/bus/pci) it reports a fatal error. pci_alloc() alone sets the default ids path.
pci_access* open_db(Db& db, const std::string* ids_file) {
  if (db.broken) return nullptr;
  if (db.acc) return db.acc;
  db.acc = pci_alloc();
  if (!db.acc) {
    db.broken = true;
    return nullptr;
  }
  db.acc->error = on_error;
  db.acc->warning = on_warning;
  db.acc->debug = on_debug;
  if (ids_file) pci_set_name_list_path(db.acc, ::strdup(ids_file->c_str()), 1);
  return db.acc;
}

// Runs one lookup; the caller holds g_mu or owns `db` exclusively.
std::optional<std::string> lookup(Db& db, const std::string* ids_file, int flags_in, uint32_t a,
                                  uint32_t b) {
  // Everything sigsetjmp/siglongjmp may see is computed before the jump point.
  const int flags = flags_in | PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB;
  pci_access* acc = open_db(db, ids_file);
  if (!acc) return std::nullopt;
  char buf[1024];
  buf[0] = '\0';
  const char* res = nullptr;
  sigjmp_buf jb;
  t_jump = &jb;
  if (sigsetjmp(jb, 0) == 0) {
    // No udev hwdb: libpci 3.9 leaks a udev handle on every hwdb miss, and wherever libpci
    // is installed its package also installs pci.ids (Debian pci.ids, Fedora hwdata).
    if (flags & PCI_LOOKUP_DEVICE)
      res = pci_lookup_name(acc, buf, sizeof buf, flags, static_cast<int>(a & 0xffff),
                            static_cast<int>(b & 0xffff));
    else
      res = pci_lookup_name(acc, buf, sizeof buf, flags, static_cast<int>(a & 0xffff));
  } else {
    // libpci calls error() for a malformed ids file after it has closed the file, with the
    // name list in a consistent state, so the structure can still be freed. (Its only other
    // error is out-of-memory.) The database is not used again.
    db.broken = true;
    res = nullptr;
    pci_cleanup(acc);
    db.acc = nullptr;
  }
  t_jump = nullptr;
  if (!res) return std::nullopt;
  std::string name(trim(std::string_view(res)));
  if (is_pci_placeholder_name(name)) return std::nullopt;
  return name;
}

std::optional<std::string> lookup_in(const std::string& ids_file, int flags, uint32_t a,
                                     uint32_t b) {
  std::lock_guard<std::mutex> lock(g_mu);  // one libpci call at a time, whatever the database
  Db db;
  auto r = lookup(db, &ids_file, flags, a, b);
  if (db.acc) pci_cleanup(db.acc);
  return r;
}

bool all_hex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

bool is_pci_placeholder_name(const std::string& name) {
  std::string_view s = trim(name);
  if (s.empty() || s.front() == '<') return true;
  for (std::string_view pre : {"Device ", "Vendor ", "Unknown device ", "Unknown vendor "}) {
    if (starts_with(s, pre) && all_hex(s.substr(pre.size()))) return true;
  }
  return false;
}

bool is_placeholder_product_name(const std::string& name) {
  if (is_pci_placeholder_name(name)) return true;
  std::string low = to_lower(trim(name));
  std::string_view s = low;
  // A trailing bracketed id: "intel(r) graphics [0x020a]" -> "intel(r) graphics".
  if (!s.empty() && s.back() == ']') {
    size_t open = s.rfind('[');
    if (open != std::string_view::npos) {
      std::string_view id = s.substr(open + 1, s.size() - open - 2);
      if (starts_with(id, "0x")) id.remove_prefix(2);
      if (all_hex(id)) s = trim(s.substr(0, open));
    }
  }
  if (starts_with(s, "0x") && all_hex(s.substr(2))) return true;  // "0x1002"
  for (std::string_view g :
       {"graphics device", "display controller", "vga compatible controller", "3d controller",
        "unknown", "n/a", "not supported", "graphics", "intel(r) graphics", "amd graphics", "gpu",
        "unknown gpu", "unknown device"}) {
    if (s == g) return true;
  }
  return false;
}

std::optional<std::string> pci_device_name(uint32_t vendor, uint32_t device) {
  std::lock_guard<std::mutex> lock(g_mu);
  return lookup(g_system, nullptr, PCI_LOOKUP_DEVICE, vendor, device);
}

std::optional<std::string> pci_vendor_name(uint32_t vendor) {
  std::lock_guard<std::mutex> lock(g_mu);
  return lookup(g_system, nullptr, PCI_LOOKUP_VENDOR, vendor, 0);
}

std::optional<std::string> pci_device_name_in(const std::string& ids_file, uint32_t vendor,
                                              uint32_t device) {
  return lookup_in(ids_file, PCI_LOOKUP_DEVICE, vendor, device);
}

std::optional<std::string> pci_vendor_name_in(const std::string& ids_file, uint32_t vendor) {
  return lookup_in(ids_file, PCI_LOOKUP_VENDOR, vendor, 0);
}

}  // namespace grey
