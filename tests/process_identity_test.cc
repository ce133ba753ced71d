// Process identity (SPEC §8) on a fake /proc tree and a fake kubelet log directory.
//
// Every cgroup path below is a real one, copied from where it was published (container ids,
// pod uids and all), except where a comment says which part was put together from two of them:
//   [netdata-4868]   github.com/netdata/netdata/issues/4868 (systemd-cgls of a containerd node,
//                    systemd driver, cgroup v2; also a static pod's 32-hex uid)
//   [nri-227]        github.com/containerd/nri/pull/227 (kind: kubelet.slice/kubelet-kubepods...)
//   [otel-4507]      github.com/open-telemetry/opentelemetry-java/issues/4507 (containerd,
//                    systemd driver, cgroup v1: "<slice>:cri-containerd:<id>" lines)
//   [runc-4620]      github.com/opencontainers/runc/issues/4620 (CRI-O, systemd driver, v1;
//                    crio-<id>.scope and crio-conmon-<id>.scope)
//   [minikube-11280] github.com/kubernetes/minikube/issues/11280 (CRI-O pods inside a
//                    minikube node that is itself a Docker container)
//   [lxc-3890]       github.com/lxc/lxc/issues/3890 (Docker as the kubelet's runtime, systemd
//                    driver, v1: docker-<id>.scope under a pod slice)
//   [moby-34584]     github.com/moby/moby/issues/34584 (cgroupfs driver:
//                    /kubepods/besteffort/pod<uid>/<id>)
//   [crio-811]       github.com/cri-o/cri-o/issues/811 and pull/812 (CRI-O, cgroupfs driver:
//                    /kubepods/burstable/pod<uid>/<id>, renamed crio-<id> by #812)
//   [ctrsploit-280]  github.com/ctrsploit/ctrsploit/issues/280 (plain Docker, cgroupfs, hybrid
//                    v1 + "0::/system.slice/containerd.service")
//   [moby-9365]      github.com/moby/moby/issues/9365 (plain Docker, systemd driver:
//                    /system.slice/docker-<id>.scope)
//   [needrestart-234] github.com/liske/needrestart/pull/234 (v2:
//   "0::/system.slice/docker-xxx.scope") [needrestart-165] github.com/liske/needrestart/issues/165
//   (dockerd in docker.service) [podman-507]     github.com/containers/podman/pull/507
//   (machine.slice/libpod-<id>.scope and
//                    libpod-conmon-<id>.scope)
//   [podman-13673]   github.com/containers/podman/issues/13673 (libpod-<id>.scope/container in a
//                    podman pod slice)
//   [coroot-251]     github.com/coroot/coroot-node-agent/pull/251 (--cgroups=split:
//                    <unit>.service/libpod-payload-<id>)
//   [podman-29582]   github.com/containers/podman/issues/29582 (rootless:
//                    .../user.slice/libpod-<CONTAINER_ID>.scope/container)
//   [crun-376]       github.com/containers/crun/issues/376 (rootless podman's own scope:
//                    0::/user.slice/user-1000.slice/user@1000.service/user.slice/podman-6696.scope)
//   [podman-11197]   github.com/containers/podman/issues/11197 (a login session scope)
//   [loki-557]       github.com/grafana/loki/pull/557 and kubernetes/kubernetes#74441 (pod log
//                    directory /var/log/pods/<namespace>_<pod>_<uid>/<container>/, kubelet 1.14+)
//   [k0s-5987]       github.com/k0sproject/k0s/issues/5987 (real /var/log/pods entries)
//   [rke-169]        github.com/rancher/rke/issues/169 (the pre-1.14 layout /var/log/pods/<uid>/)
//   [k8s-arm-99]     github.com/luxas/kubernetes-on-arm/pull/99 (a /var/log/containers link
//                    name: <pod>_<namespace>_<container>-<id>.log)
#include "telemetry/process_identity.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon/daemon.h"
#include "daemon/metrics.h"
#include "telemetry/telemetry.h"
#include "test_util.h"
#include "util/lib_loader.h"
#include "util/runner.h"

namespace grey {
namespace {

using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

bool has_note(const std::vector<std::string>& notes, const std::string& part) {
  for (const auto& n : notes)
    if (n.find(part) != std::string::npos) return true;
  return false;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + " | ";
  return s;
}

// ---- One cgroup path ------------------------------------------------------------------------

TEST(CgroupPath, ContainerdSystemdDriverV2) {  // [netdata-4868]
  auto c = classify_cgroup_path(
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod55c6c714_b240_4dec_9a45_57b61696ab6e.slice/"
      "cri-containerd-2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36.scope");
  EXPECT_EQ(c.container_id, "2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36");
  EXPECT_EQ(c.container_runtime, "containerd");
  EXPECT_EQ(c.pod_uid, "55c6c714-b240-4dec-9a45-57b61696ab6e");
  EXPECT_EQ(
      c.systemd_unit,
      "cri-containerd-2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36.scope");
  EXPECT_TRUE(c.notes.empty()) << joined(c.notes);
}

TEST(CgroupPath, StaticPodUidIsAHash) {  // [netdata-4868]
  auto c = classify_cgroup_path(
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod8daa50c3a64c9ff60bb9eab7b44b56fd.slice/"
      "cri-containerd-2884d57c0e100d7a9a2f9487ce0bc2986bca3430e988af7a4865aff061f51ac5.scope");
  EXPECT_EQ(c.pod_uid, "8daa50c3a64c9ff60bb9eab7b44b56fd");
  EXPECT_EQ(c.container_runtime, "containerd");
}

TEST(CgroupPath, KindNestsKubepodsUnderKubeletSlice) {  // [nri-227]
  auto c = classify_cgroup_path(
      "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
      "kubelet-kubepods-besteffort-pod1e597579_417e_482f_bf65_5fe170c3aebd.slice/"
      "cri-containerd-a09bc17f5aa29b0dbdec9ede5f46cf1396d2405917ab02e6f1eb1019f388396e.scope");
  EXPECT_EQ(c.pod_uid, "1e597579-417e-482f-bf65-5fe170c3aebd");
  EXPECT_EQ(c.container_id, "a09bc17f5aa29b0dbdec9ede5f46cf1396d2405917ab02e6f1eb1019f388396e");
  EXPECT_EQ(c.container_runtime, "containerd");
}

TEST(CgroupPath, CrioSystemdDriver) {  // [runc-4620]
  auto c = classify_cgroup_path(
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-poda5c1f8d5_1919_434d_add7_4afaafdaef89.slice/"
      "crio-5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c.scope");
  EXPECT_EQ(c.container_runtime, "cri-o");
  EXPECT_EQ(c.container_id, "5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c");
  EXPECT_EQ(c.pod_uid, "a5c1f8d5-1919-434d-add7-4afaafdaef89");
}

TEST(CgroupPath, CrioConmonIsNotTheContainer) {  // [runc-4620]
  auto c = classify_cgroup_path(
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod207aaad1_659f_4db8_88e0_46e0cdcc3004.slice/"
      "crio-conmon-32da98c8522068be05a7510a3eddb09cad6ed2f03286180d0e931d0d0b6224a6.scope");
  EXPECT_EQ(c.container_id, "");
  EXPECT_EQ(c.container_runtime, "");
  EXPECT_EQ(c.pod_uid, "207aaad1-659f-4db8-88e0-46e0cdcc3004");
  EXPECT_EQ(c.systemd_unit,
            "crio-conmon-32da98c8522068be05a7510a3eddb09cad6ed2f03286180d0e931d0d0b6224a6.scope");
  EXPECT_TRUE(has_note(c.notes, "container monitor (crio-conmon)")) << joined(c.notes);
}

TEST(CgroupPath, InnermostContainerWinsInsideAMinikubeNode) {  // [minikube-11280]
  auto c = classify_cgroup_path(
      "/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/kubepods.slice/"
      "kubepods-besteffort.slice/kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/"
      "crio-358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c.scope");
  EXPECT_EQ(c.container_id, "358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c");
  EXPECT_EQ(c.container_runtime, "cri-o");
  EXPECT_EQ(c.pod_uid, "2ca4a155-3599-498d-bb9d-4446693fa3ea");
}

TEST(CgroupPath, DockerAsKubeletRuntimeSystemdDriver) {  // [lxc-3890]
  auto c = classify_cgroup_path(
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod7d4424e6_bb13_42f4_a47a_45a4828bf54d.slice/"
      "docker-d0b3604b67ac7930dd34ba3a796627e3e4717d12309e90a4afe3f38b6816ac98.scope");
  EXPECT_EQ(c.container_runtime, "docker");
  EXPECT_EQ(c.pod_uid, "7d4424e6-bb13-42f4-a47a-45a4828bf54d");
}

TEST(CgroupPath, CgroupfsDriverDoesNotNameTheRuntime) {  // [moby-34584]
  auto c = classify_cgroup_path(
      "/kubepods/besteffort/pod9a18ffb8-8513-11e7-b26e-7e29fbe2a5a3/"
      "d28e0087cf8f3f0429f755d60b0de415b20fcf76736ded7bab6e30e7b739ee36");
  EXPECT_EQ(c.container_id, "d28e0087cf8f3f0429f755d60b0de415b20fcf76736ded7bab6e30e7b739ee36");
  EXPECT_EQ(c.pod_uid, "9a18ffb8-8513-11e7-b26e-7e29fbe2a5a3");
  EXPECT_EQ(c.container_runtime, "");                                     // unknown stays empty...
  EXPECT_TRUE(has_note(c.notes, "does not name the container runtime"));  // ...and says why
  EXPECT_EQ(c.systemd_unit, "");
}

TEST(CgroupPath, CrioCgroupfsDriver) {  // [crio-811]: #811's pod path, #812's crio-<id> name
  auto c = classify_cgroup_path(
      "/kubepods/burstable/pod58662905-8ccc-11e7-a695-c85b76cda386/"
      "crio-1659f887a192f3515dd9b91a41d274abf29ca49de3d2330869131b2d93b45b94");
  EXPECT_EQ(c.container_runtime, "cri-o");
  EXPECT_EQ(c.container_id, "1659f887a192f3515dd9b91a41d274abf29ca49de3d2330869131b2d93b45b94");
  EXPECT_EQ(c.pod_uid, "58662905-8ccc-11e7-a695-c85b76cda386");
}

TEST(CgroupPath, PlainDockerBothDrivers) {
  auto a = classify_cgroup_path(  // [ctrsploit-280]
      "/docker/2403ccfe427f1dc7b6120dccb9ac58c2f8456950380d587a9f33ea7f00dd303d");
  EXPECT_EQ(a.container_runtime, "docker");
  EXPECT_EQ(a.container_id, "2403ccfe427f1dc7b6120dccb9ac58c2f8456950380d587a9f33ea7f00dd303d");
  EXPECT_EQ(a.pod_uid, "");
  auto b = classify_cgroup_path(  // [moby-9365], in the v2 form of [needrestart-234]
      "/system.slice/"
      "docker-0bd31f558c426d46f30778cefbc727282e4f257537b42b361ea5d03a44f4febe.scope");
  EXPECT_EQ(b.container_runtime, "docker");
  EXPECT_EQ(b.container_id, "0bd31f558c426d46f30778cefbc727282e4f257537b42b361ea5d03a44f4febe");
  EXPECT_EQ(b.systemd_unit,
            "docker-0bd31f558c426d46f30778cefbc727282e4f257537b42b361ea5d03a44f4febe.scope");
}

TEST(CgroupPath, PodmanRootfulAndItsConmon) {  // [podman-507]
  auto c = classify_cgroup_path(
      "/machine.slice/"
      "libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope");
  EXPECT_EQ(c.container_runtime, "podman");
  EXPECT_EQ(c.container_id, "0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a");
  auto m = classify_cgroup_path(
      "/machine.slice/"
      "libpod-conmon-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope");
  EXPECT_EQ(m.container_id, "");
  EXPECT_TRUE(has_note(m.notes, "libpod-conmon"));
}

TEST(CgroupPath, PodmanPodSubCgroupIsStillTheContainer) {  // [podman-13673]
  auto c = classify_cgroup_path(
      "/machine.slice/"
      "machine-libpod_pod_ddf44d54b520f0b4469fcd01c3155ca49e6911dc2175471eb3a7b789187a7a89.slice/"
      "libpod-1dadda571b14eefb3158a15d0fff7e0089f9dd92f922679ed0116cccdfe8bb0f.scope/container");
  EXPECT_EQ(c.container_id, "1dadda571b14eefb3158a15d0fff7e0089f9dd92f922679ed0116cccdfe8bb0f");
  EXPECT_EQ(c.container_runtime, "podman");
  EXPECT_EQ(c.pod_uid, "");  // a podman pod is not a Kubernetes pod
  EXPECT_EQ(c.systemd_unit,
            "libpod-1dadda571b14eefb3158a15d0fff7e0089f9dd92f922679ed0116cccdfe8bb0f.scope");
}

TEST(CgroupPath, PodmanSplitCgroups) {  // [coroot-251]
  auto c = classify_cgroup_path(
      "/system.slice/app_name.service/"
      "libpod-payload-cc316b3065798e96c30dcfc708f7a7dda1b2d78e552364002d2e49a3100ef3ef");
  EXPECT_EQ(c.container_runtime, "podman");
  EXPECT_EQ(c.container_id, "cc316b3065798e96c30dcfc708f7a7dda1b2d78e552364002d2e49a3100ef3ef");
  EXPECT_EQ(c.systemd_unit, "app_name.service");
}

TEST(CgroupPath, RootlessPodmanUnderUserSlice) {
  // [podman-29582]'s rootless layout with [podman-507]'s container id.
  auto c = classify_cgroup_path(
      "/user.slice/user-1000.slice/user@1000.service/user.slice/"
      "libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope/container");
  EXPECT_EQ(c.container_runtime, "podman");
  EXPECT_EQ(c.container_id, "0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a");
  EXPECT_EQ(c.systemd_unit,
            "libpod-0411a2a82311fbc65b137ca550d5f7e6b6863bc734759be2f515b0b67062d49a.scope");
  // [crun-376]: podman's own process, not a container.
  auto p = classify_cgroup_path(
      "/user.slice/user-1000.slice/user@1000.service/user.slice/podman-6696.scope");
  EXPECT_EQ(p.container_id, "");
  EXPECT_EQ(p.systemd_unit, "podman-6696.scope");
}

TEST(CgroupPath, PlainServicesAndSessions) {
  auto s = classify_cgroup_path("/system.slice/docker.service");  // [needrestart-165]
  EXPECT_EQ(s.systemd_unit, "docker.service");
  EXPECT_EQ(s.container_id, "");
  auto l = classify_cgroup_path("/user.slice/user-1002.slice/session-48.scope");  // [podman-11197]
  EXPECT_EQ(l.systemd_unit, "session-48.scope");
  EXPECT_EQ(l.container_id, "");
  EXPECT_EQ(classify_cgroup_path("/").systemd_unit, "");
}

TEST(CgroupPath, NearMissesAreNotContainers) {
  // A 63-digit id (cut short), upper-case hex, a uid with a wrong group, "pod" outside kubepods.
  const std::string id63 = "2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac3";
  EXPECT_EQ(classify_cgroup_path("/system.slice/cri-containerd-" + id63 + ".scope").container_id,
            "");
  EXPECT_EQ(classify_cgroup_path("/system.slice/docker-"
                                 "0BD31F558C426D46F30778CEFBC727282E4F257537B42B361EA5D03A44F4FEBE"
                                 ".scope")
                .container_id,
            "");
  EXPECT_EQ(
      classify_cgroup_path("/kubepods.slice/kubepods-pod55c6c714_b240_4dec_9a45_57b61696ab6.slice")
          .pod_uid,
      "");
  EXPECT_EQ(classify_cgroup_path("/batch/pod9a18ffb8-8513-11e7-b26e-7e29fbe2a5a3/"
                                 "d28e0087cf8f3f0429f755d60b0de415b20fcf76736ded7bab6e30e7b739ee36")
                .container_id,
            "");
}

// ---- A whole /proc/<pid>/cgroup ---------------------------------------------------------------

TEST(ProcCgroup, ContainerdV1ColonFormat) {  // [otel-4507], first lines as published
  auto c = parse_proc_cgroup(
      "11:perf_event:/kubepods-besteffort-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice:cri-"
      "containerd:ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459\n"
      "10:blkio:/system.slice/containerd.service/"
      "kubepods-besteffort-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice:cri-containerd:"
      "ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459\n");
  EXPECT_EQ(c.container_id, "ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459");
  EXPECT_EQ(c.container_runtime, "containerd");
  EXPECT_EQ(c.pod_uid, "0125ec2f-b64a-4868-8f5b-94b56cbab864");
  // The unit runc created, not containerd.service that the blkio line passes through.
  EXPECT_EQ(
      c.systemd_unit,
      "cri-containerd-ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459.scope");
}

TEST(ProcCgroup, CrioV1WithRootOnlyControllers) {  // [runc-4620], lines as published
  auto c = parse_proc_cgroup(
      "13:freezer:/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-poda5c1f8d5_1919_434d_add7_4afaafdaef89.slice/"
      "crio-5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c.scope\n"
      "12:cpuset:/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-poda5c1f8d5_1919_434d_add7_4afaafdaef89.slice/"
      "crio-5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c.scope\n"
      "11:files:/\n");
  EXPECT_EQ(c.container_runtime, "cri-o");
  EXPECT_EQ(c.pod_uid, "a5c1f8d5-1919-434d-add7-4afaafdaef89");
  EXPECT_TRUE(c.notes.empty()) << joined(c.notes);
}

TEST(ProcCgroup, HybridDockerIgnoresTheUnifiedLinesService) {  // [ctrsploit-280]
  auto c = parse_proc_cgroup(
      "12:net_cls,net_prio:/docker/"
      "2403ccfe427f1dc7b6120dccb9ac58c2f8456950380d587a9f33ea7f00dd303d\n"
      "10:rdma:/\n"
      "1:name=systemd:/docker/2403ccfe427f1dc7b6120dccb9ac58c2f8456950380d587a9f33ea7f00dd303d\n"
      "0::/system.slice/containerd.service\n");
  EXPECT_EQ(c.container_runtime, "docker");
  EXPECT_EQ(c.container_id, "2403ccfe427f1dc7b6120dccb9ac58c2f8456950380d587a9f33ea7f00dd303d");
  EXPECT_EQ(c.systemd_unit, "");  // not containerd.service: that line does not hold the container
}

TEST(ProcCgroup, ServiceFromTheUnifiedLineFirst) {
  auto c =
      parse_proc_cgroup("1:name=systemd:/system.slice/a.service\n0::/system.slice/b.service\n");
  EXPECT_EQ(c.systemd_unit, "b.service");
  EXPECT_TRUE(has_note(c.notes, "not in a container (cgroup /system.slice/b.service)"));
}

TEST(ProcCgroup, LinesNamingDifferentContainersNameNone) {
  auto c = parse_proc_cgroup(
      "4:memory:/docker/2403ccfe427f1dc7b6120dccb9ac58c2f8456950380d587a9f33ea7f00dd303d\n"
      "3:pids:/docker/5dace3de0735f73d2b5048f12d41a71741a02e49668de921fdae62f7e65dc498\n");
  EXPECT_EQ(c.container_id, "");
  EXPECT_EQ(c.container_runtime, "");
  EXPECT_TRUE(has_note(c.notes, "different containers (2403ccfe427f, 5dace3de0735)"));
}

TEST(ProcCgroup, TruncatedLastLineIsIgnored) {
  // The read stopped inside the id: a 40-digit prefix must not become a container.
  auto c = parse_proc_cgroup(
      "0::/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod55c6c714_b240_4dec_9a45_57b61696ab6e.slice/"
      "cri-containerd-2032491dcae31e6746f47daa0ac74564f2843a1b");
  EXPECT_EQ(c.container_id, "");
  EXPECT_EQ(c.pod_uid, "");
  EXPECT_TRUE(has_note(c.notes, "cut-short line"));
  // Even a whole id without its newline is not taken (the scope name may be cut).
  auto d = parse_proc_cgroup(
      "0::/system.slice/docker-0bd31f558c426d46f30778cefbc727282e4f257537b42b361ea5d03a44f4febe");
  EXPECT_EQ(d.container_id, "");
}

TEST(ProcCgroup, MalformedAndEmptyInputNeverCrash) {
  for (std::string_view text :
       {std::string_view(""), std::string_view("\n"), std::string_view("garbage\n"),
        std::string_view("x:y:/docker/abc\n"), std::string_view("0::relative/path\n"),
        std::string_view(":::\n::\n"), std::string_view("\0\0\0\n", 4),
        std::string_view("0::/\xff\xfe/docker-\x80.scope\n")}) {
    auto c = parse_proc_cgroup(text);
    EXPECT_EQ(c.container_id, "");
    EXPECT_EQ(c.pod_uid, "");
    EXPECT_FALSE(c.notes.empty());
  }
  auto m = parse_proc_cgroup(
      "junk\n1:name=systemd:/docker/"
      "2403ccfe427f1dc7b6120dccb9ac58c2f8456950380d587a9f33ea7f00dd303d\n");
  EXPECT_EQ(m.container_runtime, "docker");
  EXPECT_TRUE(has_note(m.notes, "1 malformed cgroup line"));
}

// ---- status and stat ------------------------------------------------------------------------

TEST(ProcStatus, InnermostNspid) {
  EXPECT_EQ(parse_nspid("Name:\tpython3\nTgid:\t4242\nNSpid:\t4242\t17\t1\nPPid:\t1\n"), 1);
  EXPECT_EQ(parse_nspid("Name:\tbash\nNSpid:\t4242\n"), 4242);
  EXPECT_EQ(parse_nspid("Name:\tbash\nPid:\t4242\n"), std::nullopt);  // kernel < 4.1
  EXPECT_EQ(parse_nspid("NSpid:\t4242\t1"), std::nullopt);            // cut short: "1" may be "17"
  EXPECT_EQ(parse_nspid("NSpid:\t4242\tx\n"), std::nullopt);
  EXPECT_EQ(parse_nspid(""), std::nullopt);
}

TEST(ProcStat, StartTimeIsField22) {
  // A command with spaces and parentheses; starttime 98765.
  std::string stat =
      "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 98765 "
      "12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";
  EXPECT_EQ(parse_stat_start_time(stat), 98765u);
  EXPECT_EQ(parse_stat_start_time("4242 (x) S 1 2 3"), std::nullopt);
  // Cut inside field 22: not taken for a smaller number.
  EXPECT_EQ(
      parse_stat_start_time("4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987"),
      std::nullopt);
  EXPECT_EQ(parse_stat_start_time("no parenthesis"), std::nullopt);
  EXPECT_EQ(parse_stat_start_time(""), std::nullopt);
}

// ---- Kubelet log names ----------------------------------------------------------------------

TEST(PodLogNames, Directories) {
  // [k0s-5987]
  auto p = parse_pod_log_dir_name(
      "gpu-operator_nvidia-dcgm-exporter-f5qx2_f4fffdb0-bb55-4cfa-bda0-d92d6b3bbaeb");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->pod_namespace, "gpu-operator");
  EXPECT_EQ(p->pod, "nvidia-dcgm-exporter-f5qx2");
  EXPECT_EQ(p->uid, "f4fffdb0-bb55-4cfa-bda0-d92d6b3bbaeb");
  // [rke-169]: the pre-1.14 layout, a bare uid.
  auto old = parse_pod_log_dir_name("45eb687f-f270-11e7-a23e-5ab0d5506cd4");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->pod, "");
  EXPECT_EQ(old->uid, "45eb687f-f270-11e7-a23e-5ab0d5506cd4");
  for (const char* bad : {"", "_", "a_b", "a_b_c", "ns_pod_f4fffdb0-bb55-4cfa-bda0-d92d6b3bbae",
                          "NS_pod_f4fffdb0-bb55-4cfa-bda0-d92d6b3bbaeb",
                          "ns_pod_x_f4fffdb0-bb55-4cfa-bda0-d92d6b3bbaeb", ".hidden"})
    EXPECT_FALSE(parse_pod_log_dir_name(bad)) << bad;
}

TEST(PodLogNames, ContainerLinks) {
  // [k8s-arm-99]
  auto l = parse_container_log_name(
      "k8s-master-192.168.1.30_default_scheduler-"
      "9acaf0821554295896df64c616431733049ac1fbf340b73234ba06ff66f88f1f.log");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->pod, "k8s-master-192.168.1.30");
  EXPECT_EQ(l->pod_namespace, "default");
  EXPECT_EQ(l->container, "scheduler");
  EXPECT_EQ(l->container_id, "9acaf0821554295896df64c616431733049ac1fbf340b73234ba06ff66f88f1f");
  EXPECT_FALSE(parse_container_log_name("a_b_c-123.log"));
  EXPECT_FALSE(parse_container_log_name(
      "a_b-9acaf0821554295896df64c616431733049ac1fbf340b73234ba06ff66f88f1f.log"));
  EXPECT_FALSE(parse_container_log_name("x.txt"));
}

// ---- The resolver on a fake /proc and log directory ------------------------------------------

constexpr const char* kCid = "2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36";
constexpr const char* kCid2 = "7bd5db88ae6e5e52e941a2709ed9c18d7572f32db6ea44e8afe783227711151a";
constexpr const char* kUid = "55c6c714-b240-4dec-9a45-57b61696ab6e";
constexpr const char* kPodDir = "ml_trainer-0_55c6c714-b240-4dec-9a45-57b61696ab6e";

std::string stat_text(int pid, uint64_t start) {
  return std::to_string(pid) + " (python3) S 1 " + std::to_string(pid) +
         " 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 " + std::to_string(start) +
         " 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";
}

// Both containers of [netdata-4868]'s pod 55c6c714-...
std::string pod_cgroup(const char* cid) {
  return std::string(
             "0::/kubepods.slice/kubepods-burstable.slice/"
             "kubepods-burstable-pod55c6c714_b240_4dec_9a45_57b61696ab6e.slice/"
             "cri-containerd-") +
         cid + ".scope\n";
}

// Counts reads per path and can answer a scripted sequence for some (a process that ends or
// whose pid is reused while it is read).
class CountingFs : public RootedFs {
 public:
  using RootedFs::RootedFs;
  std::optional<std::string> read(const std::string& path, size_t cap) override {
    ++reads[path];
    auto it = script.find(path);
    if (it != script.end() && !it->second.empty()) {
      auto v = it->second.front();
      it->second.erase(it->second.begin());
      return v;
    }
    return RootedFs::read(path, cap);
  }
  std::vector<std::string> list(const std::string& dir) override {
    ++lists[dir];
    return RootedFs::list(dir);
  }
  std::map<std::string, int> reads, lists;
  std::map<std::string, std::vector<std::optional<std::string>>> script;
};

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<CountingFs>(t_ / "sys", t_ / "proc");
    opts_.pod_log_root = t_ / "log/pods";
  }
  void add_process(int pid, uint64_t start, const std::string& cgroup,
                   const std::string& nspid = "4242\t1") {
    std::string d = t_ / ("proc/" + std::to_string(pid));
    write_file(d + "/stat", stat_text(pid, start));
    write_file(d + "/cgroup", cgroup);
    write_file(d + "/status", "Name:\tpython3\nTgid:\t" + std::to_string(pid) + "\nNSpid:\t" +
                                  nspid + "\nPPid:\t1\n");
  }
  void add_container_dir(const std::string& pod_dir, const std::string& container) {
    fs::create_directories(t_ / ("log/pods/" + pod_dir + "/" + container));
    write_file(t_ / ("log/pods/" + pod_dir + "/" + container + "/0.log"), "");
  }
  void add_link(const std::string& pod, const std::string& ns, const std::string& container,
                const std::string& cid) {
    write_file(t_ / ("log/containers/" + pod + "_" + ns + "_" + container + "-" + cid + ".log"),
               "");
  }
  ProcessIdentityResolver resolver() { return ProcessIdentityResolver(fs_, opts_); }

  TempDir t_;
  std::shared_ptr<CountingFs> fs_;
  ProcessIdentityOptions opts_;
};

TEST_F(ResolverTest, PodWithOneContainer) {
  add_process(4242, 1000, pod_cgroup(kCid));
  add_container_dir(kPodDir, "trainer");
  auto r = resolver();
  ProcessIdentity id = r.resolve(4242);
  EXPECT_EQ(id.ns_pid, 1);
  EXPECT_EQ(id.container_id, kCid);
  EXPECT_EQ(id.container_runtime, "containerd");
  EXPECT_EQ(id.pod_uid, kUid);
  EXPECT_EQ(id.systemd_unit, std::string("cri-containerd-") + kCid + ".scope");
  EXPECT_EQ(id.pod, "trainer-0");
  EXPECT_EQ(id.pod_namespace, "ml");
  EXPECT_EQ(id.container, "trainer");
  EXPECT_TRUE(id.notes.empty()) << joined(id.notes);
}

TEST_F(ResolverTest, SeveralContainersNamedByTheirLogLinks) {
  add_process(4242, 1000, pod_cgroup(kCid));
  add_process(4343, 1001, pod_cgroup(kCid2));
  add_container_dir(kPodDir, "trainer");
  add_container_dir(kPodDir, "sidecar");
  add_link("trainer-0", "ml", "trainer", kCid);
  add_link("trainer-0", "ml", "sidecar", kCid2);
  auto r = resolver();
  EXPECT_EQ(r.resolve(4242).container, "trainer");
  EXPECT_EQ(r.resolve(4343).container, "sidecar");
  EXPECT_EQ(r.container_root_listings(), 1u);  // the second id was in the first listing
}

TEST_F(ResolverTest, SeveralContainersWithoutLinksNameNone) {
  add_process(4242, 1000, pod_cgroup(kCid));
  add_container_dir(kPodDir, "trainer");
  add_container_dir(kPodDir, "sidecar");
  auto r = resolver();
  ProcessIdentity id = r.resolve(4242);
  EXPECT_EQ(id.pod, "trainer-0");  // the pod is certain...
  EXPECT_EQ(id.container, "");     // ...which of its containers is not
  EXPECT_TRUE(has_note(id.notes, "has 2 container log directories (sidecar, trainer)"))
      << joined(id.notes);
}

TEST_F(ResolverTest, LinksThatDoNotNameTheIdNameNone) {
  // The pod's single log directory belongs to another container: this id logs nowhere (a
  // sandbox), so the one directory must not be taken for it.
  add_process(4242, 1000, pod_cgroup(kCid));
  add_container_dir(kPodDir, "trainer");
  add_link("trainer-0", "ml", "trainer", kCid2);
  ProcessIdentity id = resolver().resolve(4242);
  EXPECT_EQ(id.container, "");
  EXPECT_TRUE(has_note(id.notes, "names container 2032491dcae3")) << joined(id.notes);
}

TEST_F(ResolverTest, LinkOfAnotherPodIsNotTrusted) {
  add_process(4242, 1000, pod_cgroup(kCid));
  add_container_dir(kPodDir, "trainer");
  add_link("other-pod", "ml", "trainer", kCid);
  ProcessIdentity id = resolver().resolve(4242);
  EXPECT_EQ(id.pod, "trainer-0");
  EXPECT_EQ(id.container, "");
  EXPECT_TRUE(has_note(id.notes, "names pod ml/other-pod")) << joined(id.notes);
}

TEST_F(ResolverTest, MissingPodLogDirectory) {
  add_process(4242, 1000, pod_cgroup(kCid));
  ProcessIdentity id = resolver().resolve(4242);
  EXPECT_EQ(id.pod_uid, kUid);  // from the cgroup alone
  EXPECT_EQ(id.container_id, kCid);
  EXPECT_EQ(id.pod, "");
  EXPECT_EQ(id.pod_namespace, "");
  EXPECT_EQ(id.container, "");
  EXPECT_TRUE(has_note(id.notes, "does not exist (see --pod-log-root)")) << joined(id.notes);
}

TEST_F(ResolverTest, UnreadablePodLogDirectory) {
  // A file where the directory should be: opendir fails even for root.
  write_file(t_ / "log/pods", "not a directory");
  add_process(4242, 1000, pod_cgroup(kCid));
  ProcessIdentity id = resolver().resolve(4242);
  EXPECT_EQ(id.pod, "");
  EXPECT_TRUE(has_note(id.notes, "is empty or unreadable")) << joined(id.notes);
}

TEST_F(ResolverTest, PodDirectoryAppearingLaterIsPickedUpWithoutRereadingProc) {
  add_process(4242, 1000, pod_cgroup(kCid));
  auto r = resolver();
  EXPECT_EQ(r.resolve(4242).pod, "");
  r.end_round();
  add_container_dir(kPodDir, "trainer");
  ProcessIdentity id = r.resolve(4242);
  EXPECT_EQ(id.pod, "trainer-0");
  EXPECT_EQ(id.container, "trainer");
  EXPECT_FALSE(has_note(id.notes, "does not exist")) << joined(id.notes);
  EXPECT_EQ(fs_->reads["/proc/4242/cgroup"], 1);
}

TEST_F(ResolverTest, LegacyPodDirectoryHasNoNames) {
  add_process(4242, 1000, pod_cgroup(kCid));
  add_container_dir(kUid, "trainer_0.log");
  ProcessIdentity id = resolver().resolve(4242);
  EXPECT_EQ(id.pod, "");
  EXPECT_EQ(id.container, "");
  EXPECT_TRUE(has_note(id.notes, "pre-1.14 layout")) << joined(id.notes);
}

TEST_F(ResolverTest, PlainServiceHasAUnitAndEmptyPodFields) {
  add_process(777, 5, "0::/system.slice/ollama.service\n", "777");
  ProcessIdentity id = resolver().resolve(777);
  EXPECT_EQ(id.systemd_unit, "ollama.service");
  EXPECT_EQ(id.ns_pid, 777);
  EXPECT_EQ(id.container_id, "");
  EXPECT_EQ(id.pod, "");
  EXPECT_TRUE(has_note(id.notes, "not in a container")) << joined(id.notes);
  EXPECT_EQ(fs_->lists.count(opts_.pod_log_root), 0u);  // no pod: no listing
}

TEST_F(ResolverTest, KnownProcessIsNotReadAgain) {
  add_process(4242, 1000, pod_cgroup(kCid));
  add_container_dir(kPodDir, "trainer");
  auto r = resolver();
  ProcessIdentity first = r.resolve(4242);
  for (int round = 0; round < 5; ++round) {
    r.end_round();
    EXPECT_EQ(r.resolve(4242), first);
  }
  EXPECT_EQ(fs_->reads["/proc/4242/cgroup"], 1);
  EXPECT_EQ(fs_->reads["/proc/4242/status"], 1);
  EXPECT_EQ(fs_->reads["/proc/4242/stat"], 2 + 5);  // twice when new, then once a round
  EXPECT_EQ(r.pod_root_listings(), 1u);
}

TEST_F(ResolverTest, ReusedPidIsNotMisattributed) {
  add_process(4242, 1000, pod_cgroup(kCid));
  add_container_dir(kPodDir, "trainer");
  auto r = resolver();
  EXPECT_EQ(r.resolve(4242).pod, "trainer-0");
  r.end_round();
  // The trainer ended; a host service got pid 4242 (a later start time).
  add_process(4242, 2000, "0::/system.slice/ollama.service\n", "4242");
  ProcessIdentity id = r.resolve(4242);
  EXPECT_EQ(id.pod, "");
  EXPECT_EQ(id.container_id, "");
  EXPECT_EQ(id.systemd_unit, "ollama.service");
  EXPECT_EQ(id.ns_pid, 4242);
}

TEST_F(ResolverTest, ProcessGoneBeforeReading) {
  ProcessIdentity id = resolver().resolve(999);
  EXPECT_EQ(id, (ProcessIdentity{std::nullopt, "", "", "", "", "", "", "", id.notes}));
  EXPECT_TRUE(has_note(id.notes, "the process has ended")) << joined(id.notes);
  EXPECT_TRUE(has_note(resolver().resolve(0).notes, "no host pid"));
  EXPECT_TRUE(has_note(resolver().resolve(-5).notes, "no host pid"));
}

TEST_F(ResolverTest, ProcessEndsBetweenListingAndReading) {
  // stat answers, then the process is gone: cgroup and status vanish, stat too.
  add_process(4242, 1000, pod_cgroup(kCid));
  fs_->script["/proc/4242/stat"] = {stat_text(4242, 1000), std::nullopt};
  fs_->script["/proc/4242/cgroup"] = {std::nullopt};
  fs_->script["/proc/4242/status"] = {std::nullopt};
  auto r = resolver();
  ProcessIdentity id = r.resolve(4242);
  EXPECT_EQ(id.container_id, "");
  EXPECT_EQ(id.pod_uid, "");
  EXPECT_TRUE(has_note(id.notes, "ended (or its pid was reused) while it was read"))
      << joined(id.notes);
  EXPECT_EQ(r.cached(), 0u);
  // Next round the (real) files answer again and it is read afresh.
  r.end_round();
  EXPECT_EQ(r.resolve(4242).container_id, kCid);
}

TEST_F(ResolverTest, PidReusedWhileReadingIsNotAttributed) {
  // The first stat belongs to an older process; the cgroup read already sees the new one.
  add_process(4242, 2000, pod_cgroup(kCid));
  add_container_dir(kPodDir, "trainer");
  fs_->script["/proc/4242/stat"] = {stat_text(4242, 1000)};
  auto r = resolver();
  ProcessIdentity id = r.resolve(4242);
  EXPECT_EQ(id.container_id, "");
  EXPECT_EQ(id.pod, "");
  EXPECT_EQ(r.cached(), 0u);
}

TEST_F(ResolverTest, TruncatedAndMalformedCgroupFilesNeverAttribute) {
  std::string whole = pod_cgroup(kCid);
  add_process(1, 10, whole.substr(0, whole.size() - 20));  // cut inside the id
  add_process(2, 10, "\xff\xfe\x00garbage:::\n");
  add_process(3, 10, "");
  add_container_dir(kPodDir, "trainer");
  auto r = resolver();
  for (int pid : {1, 2, 3}) {
    ProcessIdentity id = r.resolve(pid);
    EXPECT_EQ(id.container_id, "") << pid;
    EXPECT_EQ(id.pod, "") << pid;
    EXPECT_EQ(id.container, "") << pid;
    EXPECT_FALSE(id.notes.empty()) << pid;
  }
}

TEST_F(ResolverTest, ForgetsProcessesNotSeenForAWhile) {
  add_process(4242, 1000, "0::/system.slice/a.service\n");
  opts_.forget_after_rounds = 2;
  auto r = resolver();
  r.resolve(4242);
  EXPECT_EQ(r.cached(), 1u);
  r.end_round();
  r.end_round();
  EXPECT_EQ(r.cached(), 1u);
  r.end_round();
  EXPECT_EQ(r.cached(), 0u);
}

TEST_F(ResolverTest, PodRootListedAtMostOnceARound) {
  // Twenty processes of pods with no log directory: one listing in the round, not twenty.
  for (int i = 0; i < 20; ++i) {
    char uid[40];
    std::snprintf(uid, sizeof uid, "55c6c714_b240_4dec_9a45_57b61696a%03d", i);
    add_process(100 + i, 10,
                std::string("0::/kubepods.slice/kubepods-besteffort.slice/"
                            "kubepods-besteffort-pod") +
                    uid + ".slice/cri-containerd-" + kCid + ".scope\n");
  }
  auto r = resolver();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(r.resolve(100 + i).pod, "");
  EXPECT_EQ(r.pod_root_listings(), 1u);
}

// ---- Wiring: the telemetry record, its JSON and /metrics ---------------------------------------

TEST(IdentityWiring, ProcessJsonCarriesEveryField) {
  ProcessSample p;
  p.pid = 4242;
  p.identity.ns_pid = 1;
  p.identity.container_id = kCid;
  p.identity.container_runtime = "containerd";
  p.identity.pod_uid = kUid;
  p.identity.systemd_unit = "x.scope";
  p.identity.pod = "trainer-0";
  p.identity.pod_namespace = "ml";
  p.identity.container = "trainer";
  nlohmann::json j = to_json(p);
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["ns_pid"], 1);
  EXPECT_EQ(j["container_id"], kCid);
  EXPECT_EQ(j["container_runtime"], "containerd");
  EXPECT_EQ(j["pod_uid"], kUid);
  EXPECT_EQ(j["systemd_unit"], "x.scope");
  EXPECT_EQ(j["pod"], "trainer-0");
  EXPECT_EQ(j["namespace"], "ml");
  EXPECT_EQ(j["container"], "trainer");
  EXPECT_TRUE(j["identity_notes"].is_array());
  EXPECT_TRUE(to_json(ProcessSample{})["ns_pid"].is_null());
}

TEST(IdentityWiring, MetricsLabelPerProcessSeries) {
  MetricsInput in;
  ProcessSample a;
  a.pid = 4242;
  a.gpu_index = 0;
  a.command = "python3";
  a.user = "root";
  a.vram_mb = 100;
  a.identity.pod = "trainer-0";
  a.identity.pod_namespace = "ml";
  a.identity.container = "trainer";
  ProcessSample b = a;
  b.pid = 777;
  b.identity = ProcessIdentity{};
  in.last.processes = {a, b};
  std::string text = render_prometheus(in);
  EXPECT_NE(text.find("grey_process_vram_used_bytes{gpu=\"0\",pid=\"4242\",command=\"python3\","
                      "user=\"root\",pod=\"trainer-0\",namespace=\"ml\",container=\"trainer\"}"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("grey_process_vram_used_bytes{gpu=\"0\",pid=\"777\",command=\"python3\","
                      "user=\"root\",pod=\"\",namespace=\"\",container=\"\"}"),
            std::string::npos)
      << text;
}

TEST(IdentityWiring, CollectorFillsIdentityOfEveryProcess) {
  // The nvidia-smi fallback (no NVML, no sysfs GPU) reports pid 4242, which lives in a pod.
  TempDir t;
  std::string bin = t / "bin";
  write_file(bin + "/nvidia-smi",
             "#!/bin/sh\n"
             "case \"$1\" in\n"
             "  --query-gpu=*) echo '0, 00000000:01:00.0, GPU-4080, 1474, 16376, 45, 7, 83.12, "
             "320.00, Enabled' ;;\n"
             "  --query-compute-apps=*) printf 'gpu_bus_id, pid, process_name, used_gpu_memory "
             "[MiB]\\n00000000:01:00.0, 4242, /usr/bin/python3, 1200 MiB\\n' ;;\n"
             "  *) exit 2 ;;\n"
             "esac\n",
             0755);
  std::string old_path = getenv("PATH") ? getenv("PATH") : "";
  setenv("PATH", (bin + ":" + old_path).c_str(), 1);
  setenv("GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
  write_file(t / "proc/4242/stat", stat_text(4242, 1000));
  write_file(t / "proc/4242/cgroup", pod_cgroup(kCid));
  write_file(t / "proc/4242/status", "Name:\tpython3\nNSpid:\t4242\t7\n");
  fs::create_directories(t / ("log/pods/" + std::string(kPodDir) + "/trainer"));
  TelemetrySnapshot s;
  {
    TelemetryCollector c(std::make_shared<RootedFs>(t / "sys", t / "proc"),
                         std::make_shared<DlLoader>(), std::make_shared<PosixRunner>(), {},
                         std::chrono::milliseconds(5000), t / "log/pods");
    s = c.sample();
  }
  setenv("PATH", old_path.c_str(), 1);
  unsetenv("GREY_NVML_LIBRARY");
  ASSERT_EQ(s.processes.size(), 1u) << joined(s.notes);
  const ProcessIdentity& id = s.processes[0].identity;
  EXPECT_EQ(id.ns_pid, 7);
  EXPECT_EQ(id.container_id, kCid);
  EXPECT_EQ(id.pod, "trainer-0");
  EXPECT_EQ(id.pod_namespace, "ml");
  EXPECT_EQ(id.container, "trainer");
  EXPECT_EQ(to_json(s)["processes"][0]["pod"], "trainer-0");
}

TEST(IdentityWiring, DaemonOverCapEventNamesThePod) {
  // The daemon in this process, on the fake NVML: pid 4242 holds 1500 MiB against a 1000 MiB
  // cap, and lives in pod ml/trainer-0.
  TempDir t;
  std::string state = t / "state", sys = t / "sys";
  fs::create_directories(sys + "/class/drm");
  fs::create_directories(t / "bin");
  fs::create_directories(state);
  ::chmod(state.c_str(), 0700);
  std::map<std::string, std::string> env = {
      {"GREY_CONFIG_DIR", state},
      {"GREY_SYSFS_ROOT", sys},
      {"GREY_PROC_ROOT", t / "proc"},
      {"GREY_NVML_LIBRARY", std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so"},
      {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
      {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"},
      {"FAKE_NVML_RECORD", t / "nvml-record.txt"},
      {"FAKE_NVML_SCRIPT", t / "script.txt"}};
  write_file(t / "script.txt", "tick 0 0 50 1000 10 100000\nproc 0 0 4242 1500 trainer\n");
  write_file(state + "/config.yaml", "per_process_vram_cap_mb: 1000\n", 0600);
  write_file(t / "proc/4242/stat", stat_text(4242, 1000));
  write_file(t / "proc/4242/cgroup", pod_cgroup(kCid));
  write_file(t / "proc/4242/status", "Name:\tpython3\nNSpid:\t4242\t1\n");
  fs::create_directories(t / ("log/pods/" + std::string(kPodDir) + "/trainer"));
  auto detect_env = env;
  detect_env["PATH"] = t / "bin";
  auto d = test::run_grey({"detect", "--timeout", "3"}, detect_env);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  DaemonOptions o;
  o.interval_s = 0.05;
  o.state_dir = state;
  o.sysfs_root = sys;
  o.procfs_root = t / "proc";
  o.pod_log_root = t / "log/pods";
  o.max_ticks = 3;
  std::ostringstream out, err;
  int rc = run_daemon(o, out, err);
  for (const auto& [k, v] : env) ::unsetenv(k.c_str());
  ASSERT_EQ(rc, 0) << err.str();
  std::ifstream log(state + "/logs/daemon.jsonl");
  nlohmann::json over;
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j["event"] == "process_over_cap") over = j["details"];
  }
  ASSERT_TRUE(over.is_object()) << out.str() << err.str();
  EXPECT_EQ(over["pid"], 4242);
  EXPECT_EQ(over["ns_pid"], 1);
  EXPECT_EQ(over["pod"], "trainer-0");
  EXPECT_EQ(over["namespace"], "ml");
  EXPECT_EQ(over["container"], "trainer");
  EXPECT_EQ(over["container_id"], kCid);
  EXPECT_EQ(over["container_runtime"], "containerd");
  EXPECT_EQ(over["pod_uid"], kUid);
}

}  // namespace
}  // namespace grey
