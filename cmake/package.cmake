# package.cmake - `cpack -G DEB` from a build folder builds sluice_VERSION_ARCH.deb
# (docs/operations.md#install). Library dependencies come from
# dpkg-shlibdeps on the programs and plugins; the interpreters the Python and
# Node.js runtimes need are recommended, not required.
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR "the sluice authors")
set(CPACK_PACKAGE_CONTACT "sluice maintainers <sluice@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# opened with dlopen under systemd (core/service.c), so dpkg-shlibdeps cannot see it
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libsystemd0")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, nodejs, sqlite3")
# (the first line of the Description is CPACK_PACKAGE_DESCRIPTION_SUMMARY)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "sluice watches folders, ZeroMQ sockets and HTTP routes, runs pipelines of
 handler steps (C plugins, Python and Node.js handlers written as for AWS
 Lambda) and logs every invocation to SQLite. Includes a systemd unit.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/dist/debian/postinst
    ${PROJECT_SOURCE_DIR}/dist/debian/prerm ${PROJECT_SOURCE_DIR}/dist/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
