# install + export, so that another CMake project can find_package(flashnce) and link flashnce::flashnce.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS flashnce EXPORT flashnceTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/flashnce DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT flashnceTargets NAMESPACE flashnce:: FILE flashnceTargets.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flashnce)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/flashnceConfig.cmake.in
  ${PROJECT_BINARY_DIR}/flashnceConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flashnce)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/flashnceConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/flashnceConfig.cmake ${PROJECT_BINARY_DIR}/flashnceConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flashnce)
