# Install rules and package files for `cmake --install`.
#
# What a program linking a hone-compiled model needs: libhone_rt (shared and
# static), the public headers under include/hone/ (hone.h, model.h and
# runtime/hone_rt.h), a CMake package (find_package(hone) -> hone::hone_rt,
# hone::hone_rt_static, hone::hone) and a pkg-config file (hone_rt.pc). Both
# package files locate the prefix relative to themselves, so an installed tree
# can be moved, and `cmake --install BUILD --prefix DIR` works without
# reconfiguring.
include(CMakePackageConfigHelpers)

set(HONE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/hone)

install(TARGETS hone_rt hone_rt_shared EXPORT honeTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS hone EXPORT honeTargets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES include/hone/hone.h include/hone/model.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hone)
install(FILES runtime/hone_rt.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hone/runtime)

install(EXPORT honeTargets NAMESPACE hone:: DESTINATION ${HONE_CMAKE_DIR})
configure_package_config_file(cmake/honeConfig.cmake.in
  ${CMAKE_BINARY_DIR}/honeConfig.cmake INSTALL_DESTINATION ${HONE_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/honeConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/honeConfig.cmake ${CMAKE_BINARY_DIR}/honeConfigVersion.cmake
  DESTINATION ${HONE_CMAKE_DIR})

# pkg-config: the prefix is found from the .pc file's own folder (${pcfiledir}).
file(RELATIVE_PATH HONE_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" HONE_PC_TO_PREFIX "${HONE_PC_TO_PREFIX}")
configure_file(cmake/hone_rt.pc.in ${CMAKE_BINARY_DIR}/hone_rt.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/hone_rt.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
