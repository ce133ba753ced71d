# What `cmake --install` lays out under CMAKE_INSTALL_PREFIX (SPEC §10), and the .deb that
# scripts/package.sh makes of the same layout with CPack:
#   bin/grey-gpu-opt
#   lib/grey-gpu-opt/libgrey_cap.so            `run --enforce-cap` finds it relative to the
#                                              binary (../lib/grey-gpu-opt), so both are fixed
#   ${GREY_SYSTEMD_UNITDIR}/grey-gpu-opt.service  ExecStart= the installed binary
#   share/man/man1/grey-gpu-opt.1.gz, share/man/man5/grey-gpu-opt.conf.5.gz
#   share/bash-completion/completions/grey-gpu-opt, ${GREY_ZSH_COMPLETIONDIR}/_grey-gpu-opt,
#   share/fish/vendor_completions.d/grey-gpu-opt.fish
#   share/doc/grey-gpu-opt/{copyright,changelog.gz,CHANGELOG.md.gz,examples/config.yaml}
# A relative directory below is relative to the prefix; an absolute one is used as it is.
set(GREY_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit goes (systemd also reads /usr/local/lib/systemd/system)")
set(GREY_ZSH_COMPLETIONDIR "share/zsh/site-functions" CACHE STRING
    "Where the zsh completion goes (Debian's zsh reads share/zsh/vendor-completions below /usr)")
set(GREY_DOCDIR "share/doc/grey-gpu-opt")
# The .deb's Maintainer (and its changelog's signature); the project's commit identity.
set(CPACK_PACKAGE_CONTACT
    "Grey GPU Optimizer maintainers <maintainers@users.noreply.r-seed-905cea47.example>"
    CACHE STRING "The .deb's Maintainer field")

install(TARGETS grey-gpu-opt RUNTIME DESTINATION bin)
# A private library (not in the linker's path, no SONAME): 0644 like any shared library.
install(TARGETS grey_cap LIBRARY DESTINATION lib/grey-gpu-opt
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# The unit with ExecStart= pointing at the installed binary, written at install time, so that
# `cmake --install --prefix DIR` and CPack's prefix are the ones it names.
install(CODE "set(GREY_UNIT_SOURCE \"${PROJECT_SOURCE_DIR}/deploy/grey-gpu-opt.service\")
set(GREY_UNIT_STAGING \"${PROJECT_BINARY_DIR}/install-staging\")
set(GREY_SYSTEMD_UNITDIR \"${GREY_SYSTEMD_UNITDIR}\")")
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/GreyInstallUnit.cmake)

# Man pages and the changelog, compressed as Debian wants them (gzip -9n: no name, no time
# stamp, so the same input gives the same bytes).
find_program(GREY_GZIP gzip)
set(GREY_GZIPPED)
function(grey_gzip src out)
  set(dst ${PROJECT_BINARY_DIR}/install-staging/${out})
  add_custom_command(OUTPUT ${dst}
                     COMMAND ${CMAKE_COMMAND} -DGZIP=${GREY_GZIP} -DIN=${src} -DOUT=${dst} -P
                             ${PROJECT_SOURCE_DIR}/cmake/GreyGzip.cmake
                     DEPENDS ${src} ${PROJECT_SOURCE_DIR}/cmake/GreyGzip.cmake VERBATIM)
  set(GREY_GZIPPED ${GREY_GZIPPED} ${dst} PARENT_SCOPE)
endfunction()

foreach(page grey-gpu-opt.1 grey-gpu-opt.conf.5)
  set(src ${PROJECT_SOURCE_DIR}/docs/man/${page})
  if(EXISTS ${src})
    string(REGEX MATCH "[0-9]$" section ${page})
    if(GREY_GZIP)
      grey_gzip(${src} man/${page}.gz)
      install(FILES ${PROJECT_BINARY_DIR}/install-staging/man/${page}.gz
              DESTINATION share/man/man${section})
    else()
      install(FILES ${src} DESTINATION share/man/man${section})
    endif()
  endif()
endforeach()
# The package's changelog in Debian's format (one entry for this version, dated the day of the
# configure, or SOURCE_DATE_EPOCH), pointing at the project's own CHANGELOG.md.
string(TIMESTAMP GREY_CHANGELOG_DATE "%a, %d %b %Y 00:00:00 +0000" UTC)
configure_file(${PROJECT_SOURCE_DIR}/cmake/changelog.in
               ${PROJECT_BINARY_DIR}/install-staging/changelog @ONLY)
if(GREY_GZIP)
  grey_gzip(${PROJECT_BINARY_DIR}/install-staging/changelog doc/changelog.gz)
  grey_gzip(${PROJECT_SOURCE_DIR}/CHANGELOG.md doc/CHANGELOG.md.gz)
  install(FILES ${PROJECT_BINARY_DIR}/install-staging/doc/changelog.gz
                ${PROJECT_BINARY_DIR}/install-staging/doc/CHANGELOG.md.gz
          DESTINATION ${GREY_DOCDIR})
else()
  install(FILES ${PROJECT_BINARY_DIR}/install-staging/changelog CHANGELOG.md
          DESTINATION ${GREY_DOCDIR})
endif()
# Built with the tool (`all`), so that an install after `cmake --build` finds them.
add_custom_target(grey_install_docs ALL DEPENDS ${GREY_GZIPPED})

set(GREY_COMPLETIONS_DIR ${PROJECT_SOURCE_DIR}/completions)
if(EXISTS ${GREY_COMPLETIONS_DIR}/grey-gpu-opt.bash)
  install(FILES ${GREY_COMPLETIONS_DIR}/grey-gpu-opt.bash
          DESTINATION share/bash-completion/completions RENAME grey-gpu-opt)
endif()
if(EXISTS ${GREY_COMPLETIONS_DIR}/_grey-gpu-opt)
  install(FILES ${GREY_COMPLETIONS_DIR}/_grey-gpu-opt DESTINATION ${GREY_ZSH_COMPLETIONDIR})
endif()
if(EXISTS ${GREY_COMPLETIONS_DIR}/grey-gpu-opt.fish)
  install(FILES ${GREY_COMPLETIONS_DIR}/grey-gpu-opt.fish
          DESTINATION share/fish/vendor_completions.d)
endif()

install(FILES deploy/config.example.yaml DESTINATION ${GREY_DOCDIR}/examples RENAME config.yaml)
install(FILES cmake/copyright DESTINATION ${GREY_DOCDIR})

# ---- The .deb (scripts/package.sh runs `cpack -G DEB`) -------------------------------------
set(CPACK_PACKAGE_NAME grey-gpu-opt)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Grey GPU Optimizer")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "GPU detection, safe settings and VRAM caps for Linux")
# The extended description (CPack puts the summary above it and indents each line).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "grey-gpu-opt finds every NVIDIA, AMD and Intel GPU from every source that
knows about it (NVML, vendor tools, sysfs, CUDA, OpenCL, Vulkan, lspci) and
prints one normalized record per GPU. It plans safe per-GPU settings (VRAM
cap, batch size, thermal thresholds, power limit), applies them with a
journal that can be undone, holds CUDA programs under a per-process VRAM cap
(libgrey_cap.so), and runs as a systemd daemon with a thermal governor and
Prometheus metrics.")
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Depends: from the shared libraries the binary and the shim link (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The tools detection runs when they are installed; none is needed.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "pciutils, lshw, vulkan-tools, clinfo, mesa-utils")
set(CPACK_STRIP_FILES ON)
# Absolute destinations (GREY_SYSTEMD_UNITDIR=/lib/systemd/system) and an ExecStart= that names
# the real prefix: install into a DESTDIR with the packaging prefix, not into <staging>/usr.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)
include(CPack)
