# Install-time step (install(SCRIPT), see GreyInstall.cmake): installs deploy/grey-gpu-opt.service
# with ExecStart= naming the installed binary under CMAKE_INSTALL_PREFIX.
set(bin "${CMAKE_INSTALL_PREFIX}/bin/grey-gpu-opt")
file(READ "${GREY_UNIT_SOURCE}" unit)
set(exec_line "ExecStart=/usr/local/bin/grey-gpu-opt ")
string(FIND "${unit}" "${exec_line}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${GREY_UNIT_SOURCE} has no line starting with '${exec_line}'")
endif()
string(REPLACE "${exec_line}" "ExecStart=${bin} " unit "${unit}")
file(MAKE_DIRECTORY "${GREY_UNIT_STAGING}")
file(WRITE "${GREY_UNIT_STAGING}/grey-gpu-opt.service" "${unit}")
if(IS_ABSOLUTE "${GREY_SYSTEMD_UNITDIR}")
  set(dir "${GREY_SYSTEMD_UNITDIR}")
else()
  set(dir "${CMAKE_INSTALL_PREFIX}/${GREY_SYSTEMD_UNITDIR}")
endif()
file(INSTALL DESTINATION "${dir}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${GREY_UNIT_STAGING}/grey-gpu-opt.service")
