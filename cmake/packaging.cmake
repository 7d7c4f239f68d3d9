# packaging.cmake - what `cmake --install` and `cpack -G DEB` put on a host:
# the pkg-config file, the CMake package, man pages, systemd units, configs.
include(CMakePackageConfigHelpers)

# pkg-config: relocatable (${pcfiledir}), so an install into any prefix works.
file(RELATIVE_PATH JR_PC_UP /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" JR_PC_UP "${JR_PC_UP}")
configure_file(${CMAKE_SOURCE_DIR}/client/libjr.pc.in ${CMAKE_BINARY_DIR}/libjr.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/libjr.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The CMake package: find_package(jobrunner) gives jobrunner::jr (and
# jobrunner::jr_static).
set(JR_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/jobrunner)
install(EXPORT jobrunnerTargets NAMESPACE jobrunner:: DESTINATION ${JR_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/jobrunnerConfig.cmake.in
  ${CMAKE_BINARY_DIR}/jobrunnerConfig.cmake INSTALL_DESTINATION ${JR_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/jobrunnerConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/jobrunnerConfig.cmake
  ${CMAKE_BINARY_DIR}/jobrunnerConfigVersion.cmake DESTINATION ${JR_CMAKE_DIR})

# Man pages, from each binary's --help at build time.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(JR_MAN_PAGES)
  foreach(pair "jr-broker:jr-broker:the jobrunner broker (queue, leases, journal)"
               "jr-worker:jr-worker:the jobrunner worker (runs tasks, sends results)"
               "jr-ingester:jr-ingester:the jobrunner ingester (stores results, answers queries)"
               "jr_cli:jr:the jobrunner command line (submit, wait, query, cancel)")
    string(REPLACE ":" ";" parts "${pair}")
    list(GET parts 0 target)
    list(GET parts 1 name)
    list(GET parts 2 what)
    set(page ${CMAKE_BINARY_DIR}/man/${name}.1)
    add_custom_command(OUTPUT ${page}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --version-string=${PROJECT_VERSION}
              --name=${what} --output=${page} $<TARGET_FILE:${target}>
      DEPENDS ${target} VERBATIM COMMENT "man page ${name}.1")
    list(APPEND JR_MAN_PAGES ${page})
  endforeach()
  add_custom_target(man ALL DEPENDS ${JR_MAN_PAGES})
  install(FILES ${JR_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(WARNING "help2man not found: no man pages (deploy/install-deps.sh installs it)")
endif()

# systemd units, the settings they read, the example configs. Under /usr
# (the .deb) they go where Debian 12 keeps them, /lib/systemd/system and
# /etc; under any other prefix, below it.
file(GLOB JR_CONFS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/deploy/conf/*.conf)
set(JR_UNITS ${CMAKE_SOURCE_DIR}/deploy/jr-broker.service
  ${CMAKE_SOURCE_DIR}/deploy/jr-ingester.service ${CMAKE_SOURCE_DIR}/deploy/jr-worker.service)
install(CODE "set(JR_UNITS \"${JR_UNITS}\")\nset(JR_CONFS \"${JR_CONFS}\")\nset(JR_DEFAULT \"${CMAKE_SOURCE_DIR}/deploy/jobrunner.default\")")
install(CODE [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(jr_root "")
  else()
    set(jr_root "${CMAKE_INSTALL_PREFIX}")
  endif()
  # A unit names /usr/bin and /etc; below another prefix, it names the
  # copies there, so it can start as installed.
  foreach(unit ${JR_UNITS})
    get_filename_component(name "${unit}" NAME)
    file(READ "${unit}" text)
    if(jr_root)
      string(REPLACE "/usr/bin/" "${CMAKE_INSTALL_PREFIX}/bin/" text "${text}")
      string(REPLACE "/etc/" "${jr_root}/etc/" text "${text}")
    endif()
    file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/units/${name}" "${text}")
    file(INSTALL "${CMAKE_CURRENT_BINARY_DIR}/units/${name}"
         DESTINATION "${jr_root}/lib/systemd/system")
  endforeach()
  file(INSTALL ${JR_DEFAULT} DESTINATION "${jr_root}/etc/default" RENAME jobrunner)
  if(JR_CONFS)
    file(INSTALL ${JR_CONFS} DESTINATION "${jr_root}/etc/jobrunner")
  endif()
]])
install(PROGRAMS ${CMAKE_SOURCE_DIR}/deploy/keys-init.sh
  DESTINATION ${CMAKE_INSTALL_DATADIR}/jobrunner)

# cpack -G DEB: jobrunner_<version>_<arch>.deb, installed under /usr.
set(JR_CONFFILES "/etc/default/jobrunner\n")
foreach(conf ${JR_CONFS})
  get_filename_component(name ${conf} NAME)
  string(APPEND JR_CONFFILES "/etc/jobrunner/${name}\n")
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/deb/conffiles "${JR_CONFFILES}")
configure_file(${CMAKE_SOURCE_DIR}/deploy/deb/postinst ${CMAKE_BINARY_DIR}/deb/postinst COPYONLY)
configure_file(${CMAKE_SOURCE_DIR}/deploy/deb/postrm ${CMAKE_BINARY_DIR}/deb/postrm COPYONLY)
configure_file(${CMAKE_SOURCE_DIR}/deploy/deb/prerm ${CMAKE_BINARY_DIR}/deb/prerm COPYONLY)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME jobrunner)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "jobrunner maintainers <jobrunner@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "distributed job runner on ZeroMQ and msgpack")
set(CPACK_SET_DESTDIR ON)  # so the install code above sees the prefix /usr
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")  # useradd in postinst
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/deb/conffiles
  ${CMAKE_BINARY_DIR}/deb/postinst ${CMAKE_BINARY_DIR}/deb/prerm ${CMAKE_BINARY_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
