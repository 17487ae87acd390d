# install.cmake - what `cmake --install` copies, beyond the programs and
# plugins their own CMakeLists install (docs/operations.md#install). The
# layout is the one core/paths.c looks for beside the installed binary.
include(CMakePackageConfigHelpers)

install(FILES ${PROJECT_SOURCE_DIR}/include/sluice/handler.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sluice)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtimes/ DESTINATION ${SLUICE_INSTALL_RUNTIMEDIR}
        FILES_MATCHING PATTERN "*.py" PATTERN "*.js" PATTERN "*.mjs" PATTERN "*.json"
        PATTERN "__pycache__" EXCLUDE PATTERN "node_modules" EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/pipelines/ DESTINATION ${SLUICE_INSTALL_EXAMPLEDIR}/pipelines)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/handlers/ DESTINATION ${SLUICE_INSTALL_EXAMPLEDIR}/handlers
        PATTERN "__pycache__" EXCLUDE PATTERN "node_modules" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/dist/sluice.json DESTINATION ${SLUICE_INSTALL_EXAMPLEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/plugins/template/
        DESTINATION ${SLUICE_INSTALL_EXAMPLEDIR}/plugin)
install(FILES ${PROJECT_SOURCE_DIR}/man/sluice.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/man/sluice.json.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

# The systemd unit names the installed binary, so it is written at install
# time for the prefix in use then (cpack installs to /usr, a test to a
# temporary folder).
set(SLUICE_SYSTEMD_UNITDIR lib/systemd/system CACHE STRING
    "where the sluice.service unit is installed, relative to the prefix")
install(CODE "
  set(SLUICE_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(SLUICE_EXAMPLEDIR \"\${CMAKE_INSTALL_PREFIX}/${SLUICE_INSTALL_EXAMPLEDIR}\")
  set(unit \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${SLUICE_SYSTEMD_UNITDIR}/sluice.service\")
  message(STATUS \"Installing: \${unit}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/dist/sluice.service.in\" \"\${unit}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${unit}\")
")
install(FILES ${PROJECT_SOURCE_DIR}/dist/sysusers.conf DESTINATION lib/sysusers.d
        RENAME sluice.conf)

# For plugin authors: pkg-config and a CMake package, both relocatable
# (pkg-config through ${pcfiledir}, CMake through PACKAGE_PREFIX_DIR).
file(RELATIVE_PATH SLUICE_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${PROJECT_SOURCE_DIR}/cmake/sluice.pc.in ${PROJECT_BINARY_DIR}/sluice.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sluice.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sluiceConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sluiceConfig.cmake INSTALL_DESTINATION ${SLUICE_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR SLUICE_INSTALL_PLUGINDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sluiceConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sluiceConfig.cmake
              ${PROJECT_BINARY_DIR}/sluiceConfigVersion.cmake
        DESTINATION ${SLUICE_INSTALL_CMAKEDIR})
